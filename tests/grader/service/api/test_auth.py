"""Signing in (the OAuth2 password flow), bearer tokens of both kinds, and login throttling."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from grader.service.accounts.models import ApiToken
from grader.service.accounts.service import create_user
from grader.service.accounts.tokens import issue_access_token
from tests.grader.service.api.conftest import PASSWORD, SECRET, World


def make_password_user(world: World, email: str = "Ada@Example.org") -> str:
    with world.app.state.sessions.begin() as session:
        return create_user(session, email=email, name="Ada", password=PASSWORD).id


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> tuple[int, dict[str, str]]:
    answer = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    return answer.status_code, answer.json()


def test_the_right_password_gives_a_bearer_token_whatever_the_email_case(world: World) -> None:
    user_id = make_password_user(world)
    status, body = sign_in(world.client, "ada@EXAMPLE.org")
    assert status == 200 and body["token_type"] == "bearer"
    me = world.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert (
        me.json()["id"] == user_id and me.json()["email"] == "Ada@Example.org" and me.json()["kind"] == "user"
    )


def test_a_wrong_password_an_unknown_email_and_a_passwordless_user_get_401(world: World) -> None:
    make_password_user(world)
    for username, password in [
        ("ada@example.org", "wrong password"),
        ("nobody@example.org", PASSWORD),
        (world.emails["student"], PASSWORD),  # added to a course, never given a password
    ]:
        status, body = sign_in(world.client, username, password)
        assert (status, body) == (401, {"detail": "wrong email or password"})


def test_repeated_failures_are_throttled_with_retry_after_even_for_the_right_password(world: World) -> None:
    make_password_user(world)
    for _ in range(5):
        assert sign_in(world.client, "ada@example.org", "guess")[0] == 401
    answer = world.client.post(
        "/api/v1/auth/token", data={"username": "ada@example.org", "password": PASSWORD}
    )
    assert answer.status_code == 429
    assert int(answer.headers["Retry-After"]) > 0
    assert "too many failed sign-ins" in answer.json()["detail"]
    # Another account from the same address is not locked out by these failures.
    make_password_user(world, "grace@example.org")
    assert sign_in(world.client, "grace@example.org")[0] == 200


def test_forged_expired_and_missing_tokens_get_401_with_a_bearer_challenge(world: World) -> None:
    user_id = make_password_user(world)
    forged = issue_access_token(
        user_id, secret="another-secret-of-more-than-32-chars!", lifetime=timedelta(hours=1)
    )
    expired = issue_access_token(user_id, secret=SECRET, lifetime=timedelta(seconds=-1))
    for headers in [
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": "Bearer gt_not-a-token"},
        {"Authorization": "Bearer "},
        {},
    ]:
        answer = world.client.get("/api/v1/users/me", headers=headers)
        assert answer.status_code == 401, headers
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert answer.json()["detail"]


def test_an_api_token_is_shown_once_stored_hashed_and_refused_at_once_when_revoked(world: World) -> None:
    made = world.client.post(
        f"/api/v1/courses/{world.course}/tokens",
        json={"name": "Canvas", "scopes": ["grades:read", "submissions:read"]},
        headers=world.headers["instructor"],
    )
    assert made.status_code == 201
    token, token_id = made.json()["token"], made.json()["id"]
    bearer = {"Authorization": f"Bearer {token}"}
    me = world.client.get("/api/v1/users/me", headers=bearer).json()
    assert me["kind"] == "token" and me["course_id"] == world.course
    assert me["scopes"] == ["grades:read", "submissions:read"]
    with world.session() as session:
        stored = session.get(ApiToken, token_id)
        assert stored is not None and token not in (stored.token_hash, stored.name, stored.scopes)
    assert (
        world.client.get(f"/api/v1/submissions/{world.submission}/report", headers=bearer).status_code == 200
    )
    revoked = world.client.delete(f"/api/v1/tokens/{token_id}", headers=world.headers["instructor"])
    assert revoked.status_code == 204
    answer = world.client.get(f"/api/v1/submissions/{world.submission}/report", headers=bearer)
    assert answer.status_code == 401 and "revoked" in answer.json()["detail"]


def test_a_token_of_one_course_cannot_reach_another_course(world: World) -> None:
    bearer = world.headers["token:submissions:read"]
    assert (
        world.client.get(f"/api/v1/courses/{world.other_course}/assignments", headers=bearer).status_code
        == 404
    )
    courses = world.client.get("/api/v1/courses", headers=bearer).json()
    assert [course["id"] for course in courses] == [world.course]


def test_unknown_scopes_are_refused(world: World) -> None:
    answer = world.client.post(
        f"/api/v1/courses/{world.course}/tokens",
        json={"name": "x", "scopes": ["admin"]},
        headers=world.headers["instructor"],
    )
    assert answer.status_code == 422 and "scopes" in answer.json()["detail"]
