"""The access matrix's rows for grades, exports and regrades (see access_rules.py)."""

from __future__ import annotations

from typing import Any

from grader.service.grading.models import Regrade
from tests.grader.service.api.access_rules import Routes, rule
from tests.grader.service.api.conftest import World

STAFF = {"ta": 202, "instructor": 202, "admin": 202}


def with_a_regrade(world: World, role: str) -> tuple[str, dict[str, Any]]:
    """The last-regrade URL of an assignment that was regraded (else staff get 404 too)."""
    with world.session() as session, session.begin():
        session.add(Regrade(assignment_id=world.assignment, requested_by="test", jobs=0))
    return f"/api/v1/assignments/{world.assignment}/regrade", {}


ROUTES: Routes = {
    ("GET", "/api/v1/assignments/{assignment_id}/grades"): (
        lambda w, r: (f"/api/v1/assignments/{w.assignment}/grades", {}),
        rule(token_grades_read=200, tokens=403, outsiders=404, everyone=200),  # students: their own row
    ),
    ("GET", "/api/v1/assignments/{assignment_id}/grades.csv"): (
        lambda w, r: (f"/api/v1/assignments/{w.assignment}/grades.csv", {"params": {"format": "canvas"}}),
        rule(
            ta=200, instructor=200, admin=200, token_grades_read=200, tokens=403, outsiders=404, everyone=403
        ),
    ),
    ("POST", "/api/v1/submissions/{submission_id}/regrade"): (
        lambda w, r: (f"/api/v1/submissions/{w.submission}/regrade", {}),
        rule(**STAFF, owner=403, tokens=403, everyone=404),
    ),
    ("POST", "/api/v1/assignments/{assignment_id}/regrade"): (
        lambda w, r: (f"/api/v1/assignments/{w.assignment}/regrade", {}),
        rule(**STAFF, tokens=403, outsiders=404, everyone=403),
    ),
    ("GET", "/api/v1/assignments/{assignment_id}/regrade"): (
        with_a_regrade,
        rule(ta=200, instructor=200, admin=200, tokens=403, outsiders=404, everyone=403),
    ),
}
