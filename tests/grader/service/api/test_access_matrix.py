"""Every route of the API × every kind of caller, on an object of course `cs231n` that is someone else's
(the submission is the student `owner`'s). The table below is checked against the app's own route table,
so that a new route without its row fails here.

Callers: anonymous; the course's students (`student`, and `owner` whose work the submission is), TA and
instructor; another course's student and instructor; an admin; an API token of the course per scope; a
revoked token. Objects a caller may not see are 404 (nobody learns they exist); objects they may see but
not change are 403; 401 means no valid credentials.
"""

from __future__ import annotations

import pytest

from tests.grader.service.api import (
    routes_grades,
    routes_gradescope,
    routes_invites,
    routes_members,
    routes_roster,
    routes_webhooks,
)
from tests.grader.service.api.access_rules import ROLES, UPSERTED, Routes, manage, rule, slug, view
from tests.grader.service.api.conftest import World, example_files

CORE_ROUTES: Routes = {
    ("POST", "/api/v1/auth/token"): (
        lambda w, r: (
            "/api/v1/auth/token",
            {"data": {"username": f"{slug(r)}@example.org", "password": "nope"}},
        ),
        {role: (401,) for role in ROLES},  # nobody gets in without the password, whatever they send
    ),
    ("GET", "/healthz"): (lambda w, r: ("/healthz", {}), {role: (200,) for role in ROLES}),
    # Open unless GRADER_METRICS_TOKEN is set (test_metrics.py tests it set).
    ("GET", "/metrics"): (lambda w, r: ("/metrics", {}), {role: (200,) for role in ROLES}),
    ("GET", "/api/v1/users/me"): (lambda w, r: ("/api/v1/users/me", {}), rule(everyone=200)),
    ("POST", "/api/v1/courses"): (
        lambda w, r: ("/api/v1/courses", {"json": {"slug": f"new-{slug(r)}", "title": "New"}}),
        rule(instructor=201, other_instructor=201, admin=201, everyone=403),
    ),
    ("GET", "/api/v1/courses"): (lambda w, r: ("/api/v1/courses", {}), rule(everyone=200)),
    ("POST", "/api/v1/courses/{course_id}/members"): (
        lambda w, r: (
            f"/api/v1/courses/{w.course}/members",
            {"json": {"email": "new.person@example.org", "name": "New Person", "role": "student"}},
        ),
        manage(UPSERTED),
    ),
    ("GET", "/api/v1/courses/{course_id}/members"): (
        lambda w, r: (f"/api/v1/courses/{w.course}/members", {}),
        rule(instructor=200, ta=200, admin=200, outsiders=404, everyone=403),
    ),
    ("POST", "/api/v1/courses/{course_id}/assignments"): (
        lambda w, r: (
            f"/api/v1/courses/{w.course}/assignments",
            {
                "json": {
                    "slug": f"a-{slug(r)}",
                    "title": "New",
                    "catalog": "cs231n-a2-fc",
                    "due_at": "2027-03-01T23:59:00-08:00",
                }
            },
        ),
        manage(201),
    ),
    ("GET", "/api/v1/courses/{course_id}/assignments"): (
        lambda w, r: (f"/api/v1/courses/{w.course}/assignments", {}),
        view(200),
    ),
    ("GET", "/api/v1/assignments/{assignment_id}"): (
        lambda w, r: (f"/api/v1/assignments/{w.assignment}", {}),
        view(200),
    ),
    ("PATCH", "/api/v1/assignments/{assignment_id}"): (
        lambda w, r: (f"/api/v1/assignments/{w.assignment}", {"json": {"title": f"Renamed by {r}"}}),
        manage(200),
    ),
    ("POST", "/api/v1/assignments/{assignment_id}/extensions"): (
        lambda w, r: (
            f"/api/v1/assignments/{w.assignment}/extensions",
            {"json": {"email": w.emails["owner"], "due_at": "2027-04-01T12:00:00Z"}},
        ),
        rule(instructor=UPSERTED, ta=UPSERTED, admin=UPSERTED, outsiders=404, tokens=403, everyone=403),
    ),
    ("POST", "/api/v1/assignments/{assignment_id}/submissions"): (
        lambda w, r: (
            f"/api/v1/assignments/{w.assignment}/submissions",
            {"files": example_files(), "data": {"student": w.emails["owner"]}},
        ),
        rule(
            owner=202,  # their own email: their own work
            instructor=202,
            ta=202,
            admin=202,
            token_submissions_write=202,
            tokens=403,
            outsiders=404,
            everyone=403,
        ),
    ),
    ("GET", "/api/v1/assignments/{assignment_id}/submissions"): (
        lambda w, r: (f"/api/v1/assignments/{w.assignment}/submissions", {}),
        rule(token_submissions_read=200, tokens=403, outsiders=404, everyone=200),  # students: their own
    ),
    ("GET", "/api/v1/submissions/{submission_id}"): (
        lambda w, r: (f"/api/v1/submissions/{w.submission}", {}),
        rule(
            owner=200, ta=200, instructor=200, admin=200, token_submissions_read=200, tokens=403, everyone=404
        ),
    ),
    ("GET", "/api/v1/submissions/{submission_id}/report"): (
        lambda w, r: (f"/api/v1/submissions/{w.submission}/report", {}),
        rule(owner=200, ta=200, instructor=200, admin=200, token_grades_read=200, tokens=403, everyone=404),
    ),
    ("GET", "/api/v1/submissions/{submission_id}/runs"): (
        lambda w, r: (f"/api/v1/submissions/{w.submission}/runs", {}),
        rule(owner=403, ta=200, instructor=200, admin=200, token_grades_read=200, tokens=403, everyone=404),
    ),
    ("POST", "/api/v1/courses/{course_id}/tokens"): (
        lambda w, r: (
            f"/api/v1/courses/{w.course}/tokens",
            {"json": {"name": "LMS", "scopes": ["grades:read"]}},
        ),
        manage(201),
    ),
    ("DELETE", "/api/v1/tokens/{token_id}"): (
        lambda w, r: (f"/api/v1/tokens/{w.token_to_revoke}", {}),
        manage(204),
    ),
}


ROUTES: Routes = {
    **CORE_ROUTES,
    **routes_grades.ROUTES,
    **routes_roster.ROUTES,
    **routes_invites.ROUTES,
    **routes_members.ROUTES,
    **routes_gradescope.ROUTES,
    **routes_webhooks.ROUTES,
}


def app_routes(world: World) -> set[tuple[str, str]]:
    spec = world.app.openapi()
    return {(method.upper(), path) for path, operations in spec["paths"].items() for method in operations}


def test_the_table_names_every_route_of_the_app(world: World) -> None:
    assert app_routes(world) == set(ROUTES)


def test_the_table_knows_every_role() -> None:
    for _request, expected in ROUTES.values():
        assert set(expected) == set(ROLES)


@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda route: f"{route[0]} {route[1]}")
def test_every_role_gets_what_the_rules_say(world: World, route: tuple[str, str]) -> None:
    method, _ = route
    request, expected = ROUTES[route]
    wrong = []
    for role in ROLES:
        url, keywords = request(world, role)
        answer = world.client.request(method, url, headers=world.headers[role], **keywords)
        if answer.status_code not in expected[role]:
            wrong.append(f"{role}: {answer.status_code} {answer.text[:200]} (expected {expected[role]})")
        if answer.status_code >= 400:
            assert isinstance(answer.json()["detail"], str) and answer.json()["detail"], answer.text
    assert not wrong, "\n".join(wrong)
