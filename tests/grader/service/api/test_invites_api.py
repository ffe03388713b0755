"""POST /api/v1/courses/{id}/members/{user_id}/invite, on both databases: the course's instructors (and
admins) get a one-time link for a member without a password, which sets it; students and TAs are refused,
and so is a link that would take over an account the caller does not fully teach."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from grader.service.accounts.invites import InviteRefused, redeem_invite
from grader.service.accounts.service import create_user
from grader.service.courses.models import Membership, Role
from tests.grader.service.api.conftest import SECRET, World
from tests.grader.service.api.routes_invites import user_id

NEW_PASSWORD = "a password of my own"


def invite(world: World, member: str, role: str = "instructor", course: str | None = None) -> Any:
    return world.client.post(
        f"/api/v1/courses/{course or world.course}/members/{user_id(world, member)}/invite",
        headers=world.headers[role],
    )


def sign_in(world: World, member: str, password: str) -> int:
    answer = world.client.post(
        "/api/v1/auth/token", data={"username": world.emails[member], "password": password}
    )
    return answer.status_code


@pytest.mark.parametrize("role", ["instructor", "admin"])
def test_staff_get_a_link_that_sets_the_members_password(world: World, role: str) -> None:
    answer = invite(world, "student", role)

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert set(body) == {"url", "expires_at"}
    assert body["url"].startswith("http://localhost:8000/invite/")  # GRADER_PUBLIC_URL's default
    expires = datetime.fromisoformat(body["expires_at"])
    assert abs(expires - datetime.now(UTC) - timedelta(hours=72)) < timedelta(minutes=1)
    assert sign_in(world, "student", NEW_PASSWORD) == 401

    token = body["url"].rsplit("/", 1)[1]
    with world.session() as session, session.begin():
        redeem_invite(session, token, NEW_PASSWORD, secret=SECRET)

    assert sign_in(world, "student", NEW_PASSWORD) == 200
    with world.session() as session, pytest.raises(InviteRefused, match="used already"):
        redeem_invite(session, token, "yet another password", secret=SECRET)


@pytest.mark.parametrize(
    "role, status, message",
    [
        ("student", 403, "only the course's instructors"),
        ("owner", 403, "only the course's instructors"),
        ("ta", 403, "only the course's instructors"),
        ("other_instructor", 404, "no such course"),
        ("token:submissions:write", 403, "an API token cannot do this"),
        ("anonymous", 401, "sign in first"),
    ],
)
def test_others_are_refused(world: World, role: str, status: int, message: str) -> None:
    answer = invite(world, "student", role)
    assert answer.status_code == status and message in answer.json()["detail"], answer.text


def test_a_member_who_has_a_password_gets_no_link(world: World) -> None:
    with world.session() as session, session.begin():
        create_user(session, email="pat@example.org", name="Pat", password="pats own password")
    world.emails["pat"] = "pat@example.org"
    with world.session() as session, session.begin():
        session.add(Membership(course_id=world.course, user_id=user_id(world, "pat"), role=Role.student))

    answer = invite(world, "pat", "admin")  # not even from an admin: the operator's CLI resets passwords

    assert answer.status_code == 409 and "has a password already" in answer.json()["detail"]
    assert "grader users invite" in answer.json()["detail"]


def test_only_a_member_of_the_course_gets_a_link(world: World) -> None:
    answer = invite(world, "other_student")
    assert answer.status_code == 404 and answer.json()["detail"] == "no such member of this course"
    missing = world.client.post(
        f"/api/v1/courses/{world.course}/members/no-such-user/invite", headers=world.headers["instructor"]
    )
    assert missing.status_code == 404


def test_a_person_in_a_course_the_instructor_does_not_teach_is_left_to_admins(world: World) -> None:
    """Whoever holds the link holds the account: an instructor who adds another course's instructor (who has
    no password yet) to their course must not get the keys to that course too."""
    with world.session() as session, session.begin():
        session.add(
            Membership(course_id=world.course, user_id=user_id(world, "other_instructor"), role=Role.student)
        )

    answer = invite(world, "other_instructor")
    assert answer.status_code == 403, answer.text
    assert "belongs to a course you do not teach" in answer.json()["detail"]
    assert invite(world, "other_instructor", "admin").status_code == 201


def test_an_instructor_who_teaches_all_of_a_persons_courses_may(world: World) -> None:
    with world.session() as session, session.begin():
        instructor = user_id(world, "instructor")
        session.add(Membership(course_id=world.other_course, user_id=instructor, role=Role.instructor))
        session.add(
            Membership(course_id=world.course, user_id=user_id(world, "other_student"), role=Role.student)
        )
    assert invite(world, "other_student").status_code == 201
