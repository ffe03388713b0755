"""The access matrix's rows for roster imports and course settings (see access_rules.py).

Both are the course's instructors' (and admins'): a roster adds people and a login pattern decides whose
email a login id becomes. An import that finds its person already there answers 200 all the same."""

from __future__ import annotations

from tests.grader.service.api.access_rules import Routes, manage

ROSTER = b"email,name,student_number\nnew.person@example.org,New Person,S-77\n"

ROUTES: Routes = {
    ("PATCH", "/api/v1/courses/{course_id}"): (
        lambda w, r: (
            f"/api/v1/courses/{w.course}",
            {"json": {"title": f"CS231n ({r})", "login_email_pattern": "{login}@stanford.edu"}},
        ),
        manage(200),
    ),
    ("POST", "/api/v1/courses/{course_id}/roster"): (
        lambda w, r: (f"/api/v1/courses/{w.course}/roster", {"files": {"file": ("roster.csv", ROSTER)}}),
        manage(200),
    ),
}
