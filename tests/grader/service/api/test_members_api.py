"""DELETE /api/v1/courses/{id}/members/{user_id}, and the role rules POST .../members shares with a roster
import, on both databases: a student who drops the course leaves its roster, its grades and its pages;
their work is kept and comes back with them; nobody removes or demotes themselves or the last instructor."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from grader.service.accounts.models import User
from grader.service.courses.models import Membership, Role
from grader.service.submissions.models import Submission
from tests.grader.service.api.conftest import World, example_files


def user_id(world: World, role: str) -> str:
    with world.session() as session:
        found = session.scalar(select(User.id).where(User.email == world.emails[role]))
    assert found is not None
    return found


def remove(world: World, role: str, *, by: str = "instructor", course: str | None = None) -> Any:
    return world.client.delete(
        f"/api/v1/courses/{course or world.course}/members/{user_id(world, role)}", headers=world.headers[by]
    )


def member_emails(world: World) -> set[str]:
    answer = world.client.get(f"/api/v1/courses/{world.course}/members", headers=world.headers["instructor"])
    assert answer.status_code == 200, answer.text
    return {row["email"] for row in answer.json()}


def graded_emails(world: World) -> set[str]:
    answer = world.client.get(f"/api/v1/assignments/{world.assignment}/grades", headers=world.headers["ta"])
    assert answer.status_code == 200, answer.text
    return {row["email"] for row in answer.json()}


def put(world: World, role: str, new_role: str, *, by: str = "instructor") -> Any:
    body = {"email": world.emails[role], "name": role.title(), "role": new_role}
    return world.client.post(f"/api/v1/courses/{world.course}/members", json=body, headers=world.headers[by])


def role_of(world: World, role: str) -> Role | None:
    with world.session() as session:
        return session.scalar(
            select(Membership.role).where(
                Membership.course_id == world.course, Membership.user_id == user_id(world, role)
            )
        )


def test_a_removed_student_leaves_the_course_and_comes_back_with_their_work(world: World) -> None:
    owner = world.emails["owner"]
    assert owner in member_emails(world) and owner in graded_emails(world)
    own = world.client.get(f"/api/v1/submissions/{world.submission}", headers=world.headers["owner"])
    assert own.status_code == 200

    answer = remove(world, "owner")
    assert answer.status_code == 204, answer.text
    assert answer.content == b""
    assert owner not in member_emails(world)
    assert owner not in graded_emails(world)  # nor in the exports, which are the grades
    gone = world.client.get(f"/api/v1/submissions/{world.submission}", headers=world.headers["owner"])
    assert gone.status_code == 404
    submitting = world.client.post(
        f"/api/v1/assignments/{world.assignment}/submissions",
        files=example_files(),
        headers=world.headers["owner"],
    )
    assert submitting.status_code == 404, submitting.text
    staff = world.client.get(f"/api/v1/submissions/{world.submission}", headers=world.headers["ta"])
    assert staff.status_code == 200  # the work is kept, and staff still see it
    with world.session() as session:
        assert session.get(Submission, world.submission) is not None

    assert put(world, "owner", "student").status_code == 201
    assert owner in graded_emails(world)
    back = world.client.get(f"/api/v1/submissions/{world.submission}", headers=world.headers["owner"])
    assert back.status_code == 200


def test_staff_members_can_be_removed_too(world: World) -> None:
    assert remove(world, "ta").status_code == 204
    members = world.client.get(f"/api/v1/courses/{world.course}/members", headers=world.headers["ta"])
    assert members.status_code == 404  # no longer in the course: it does not exist for them


def test_nobody_removes_themselves_nor_the_last_instructor(world: World) -> None:
    mine = remove(world, "instructor")
    assert mine.status_code == 409
    assert mine.json()["detail"] == (
        "instructor@example.org is you: you cannot remove yourself from the course (another instructor can)"
    )
    last = remove(world, "instructor", by="admin")
    assert last.status_code == 409
    assert "last instructor: make someone else its instructor first" in last.json()["detail"]
    assert role_of(world, "instructor") is Role.instructor

    assert put(world, "ta", "instructor").status_code == 200  # a second instructor
    assert remove(world, "instructor", by="admin").status_code == 204
    assert role_of(world, "instructor") is None


def test_nobody_changes_their_own_role_nor_demotes_the_last_instructor(world: World) -> None:
    mine = put(world, "instructor", "ta")
    assert mine.status_code == 409
    assert mine.json()["detail"] == (
        "instructor@example.org is you: you cannot change your own role (another instructor can)"
    )
    last = put(world, "instructor", "student", by="admin")
    assert last.status_code == 409
    assert "last instructor" in last.json()["detail"]
    assert role_of(world, "instructor") is Role.instructor
    same = put(world, "instructor", "instructor")  # saving one's own member row unchanged is no change
    assert same.status_code == 200
    assert put(world, "student", "ta").status_code == 200  # someone else's role changes as before
    assert role_of(world, "student") is Role.ta


def test_what_is_not_a_member_here_is_404(world: World) -> None:
    outsider = remove(world, "other_student")
    assert outsider.status_code == 404
    assert outsider.json()["detail"] == "no such member of this course"
    nobody = world.client.delete(
        f"/api/v1/courses/{world.course}/members/no-such-user", headers=world.headers["instructor"]
    )
    assert nobody.status_code == 404
    elsewhere = remove(world, "student", by="other_instructor")
    assert elsewhere.status_code == 404  # the course itself does not exist for them
    assert role_of(world, "student") is Role.student
