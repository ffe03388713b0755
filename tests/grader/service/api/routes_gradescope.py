"""The access matrix's rows for Gradescope results (see access_rules.py): results.json is the report in
another format, so it is open to exactly those who may read /report."""

from __future__ import annotations

from tests.grader.service.api.access_rules import Routes, rule

ROUTES: Routes = {
    ("GET", "/api/v1/submissions/{submission_id}/results.json"): (
        lambda w, r: (f"/api/v1/submissions/{w.submission}/results.json", {}),
        rule(owner=200, ta=200, instructor=200, admin=200, token_grades_read=200, tokens=403, everyone=404),
    ),
}
