"""DELETE /api/v1/courses/{id}/members/{user_id}, and the role rules POST .../members shares with a roster
import, on both databases: a student who drops the course leaves its roster, its grades and its pages;
their work is kept and comes back with them; nobody removes or demotes themselves or the last instructor."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select, text

from grader.service.accounts.caller import Caller
from grader.service.accounts.models import User
from grader.service.courses.models import Course, FormerMembership, Membership, Role
from grader.service.courses.service import remove_member
from grader.service.errors import Conflict
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


def test_a_former_member_comes_back_as_they_were_with_their_lms_ids(world: World) -> None:
    with world.session() as session, session.begin():
        ta = session.scalar(
            select(Membership).where(
                Membership.course_id == world.course, Membership.user_id == user_id(world, "ta")
            )
        )
        assert ta is not None
        ta.lms_id, ta.section, ta.sis_login_id = "1001", "CS231N-02", "ta"
    assert remove(world, "ta").status_code == 204
    with world.session() as session:
        former = session.scalar(
            select(FormerMembership).where(FormerMembership.user_id == user_id(world, "ta"))
        )
        assert former is not None and (former.role, former.lms_id) == (Role.ta, "1001")

    # A plain roster without roles or LMS ids: the role and the ids they had come back.
    roster = world.client.post(
        f"/api/v1/courses/{world.course}/roster",
        files={"file": ("roster.csv", b"email\nta@example.org\n", "text/csv")},
        headers=world.headers["instructor"],
    )
    assert roster.status_code == 200 and roster.json()["applied"], roster.text
    back = {row["email"]: row for row in members_list(world)}["ta@example.org"]
    assert (back["role"], back["lms_id"], back["section"], back["sis_login_id"]) == (
        "ta",
        "1001",
        "CS231N-02",
        "ta",
    )

    assert remove(world, "ta").status_code == 204  # and once more, added back by hand as a student
    assert put(world, "ta", "student").status_code == 201
    back = {row["email"]: row for row in members_list(world)}["ta@example.org"]
    assert (back["role"], back["lms_id"], back["section"]) == ("student", "1001", "CS231N-02")
    with world.session() as session:
        assert session.scalar(select(FormerMembership)) is None  # used up by the return


def test_a_former_member_gets_a_password_link_only_from_their_courses_instructors(world: World) -> None:
    """Removed from their only course, a student without a password belongs to no course: another
    course's instructor who adds them must not be able to take the account over with a link."""
    assert remove(world, "owner").status_code == 204
    body = {"email": world.emails["owner"], "name": "Owner", "role": "student"}
    added = world.client.post(
        f"/api/v1/courses/{world.other_course}/members", json=body, headers=world.headers["other_instructor"]
    )
    assert added.status_code == 201
    link = world.client.post(
        f"/api/v1/courses/{world.other_course}/members/{user_id(world, 'owner')}/invite",
        headers=world.headers["other_instructor"],
    )
    assert link.status_code == 403, link.text
    by_admin = world.client.post(
        f"/api/v1/courses/{world.other_course}/members/{user_id(world, 'owner')}/invite",
        headers=world.headers["admin"],
    )
    assert by_admin.status_code == 201  # an admin may


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_instructors_removing_each_other_at_once_leave_one(world: World) -> None:
    """Each counts two instructors before the other's removal commits; the course's row lock makes the
    second wait for the first, then see one instructor left, and refuse."""
    with world.session() as session, session.begin():
        second = session.scalar(select(User).where(User.email == world.emails["ta"]))
        assert second is not None
        member = session.scalar(select(Membership).where(Membership.user_id == second.id))
        assert member is not None
        member.role = Role.instructor
    first_id, second_id = user_id(world, "instructor"), user_id(world, "ta")
    outcome: dict[str, object] = {}

    def the_second_removes_the_first() -> None:
        with world.session() as session:
            try:
                with session.begin():
                    caller, course = (
                        Caller(user=session.get(User, second_id)),
                        session.get(Course, world.course),
                    )
                    assert course is not None
                    remove_member(session, caller, course, first_id)
                outcome["second"] = "removed"
            except Conflict as exc:
                outcome["second"] = str(exc)

    with world.session() as session, session.begin():
        caller, course = Caller(user=session.get(User, first_id)), session.get(Course, world.course)
        assert course is not None
        remove_member(session, caller, course, second_id)  # not committed yet
        other = threading.Thread(target=the_second_removes_the_first)
        other.start()
        wait_until_blocked_or_done(world, other)
    other.join(timeout=30)
    assert outcome["second"] == "instructor@example.org is the course's last instructor: " + (
        "make someone else its instructor first"
    )
    assert role_of(world, "instructor") is Role.instructor


LOCK_WAITS = (
    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
)


def wait_until_blocked_or_done(world: World, thread: threading.Thread) -> None:
    """Until the thread's transaction waits for a lock (or has ended: without the lock, it does not wait)."""
    for _ in range(600):
        if not thread.is_alive():
            return
        with world.session() as session:
            waiting = session.scalar(text(LOCK_WAITS))
        if waiting:
            return
        thread.join(timeout=0.05)
    raise AssertionError("the second removal neither waited nor ended")


def members_list(world: World) -> list[dict[str, Any]]:
    answer = world.client.get(f"/api/v1/courses/{world.course}/members", headers=world.headers["instructor"])
    assert answer.status_code == 200, answer.text
    return list(answer.json())
