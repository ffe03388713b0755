"""Who may do what in a course: the one place these rules live.

`view`: members, admins and the course's API tokens. `staff`: its instructors and TAs, admins, and its
API tokens that hold the route's scope. `manage`: its instructors and admins. A course the caller has no
part in is NotFound, so that nobody learns whether it exists; one they may see but not change is Forbidden.
"""

from __future__ import annotations

import enum

from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.service.accounts.caller import Caller
from grader.service.accounts.models import User
from grader.service.courses.models import Course, FormerMembership, Membership, Role
from grader.service.errors import Forbidden, NotFound

STAFF_ROLES = frozenset({Role.instructor, Role.ta})


class Need(enum.Enum):
    view = "view"
    staff = "staff"
    manage = "manage"


def membership(session: Session, course_id: str, user_id: str) -> Membership | None:
    return session.scalar(
        select(Membership).where(Membership.course_id == course_id, Membership.user_id == user_id)
    )


def authorize_course(
    session: Session, caller: Caller, course_id: str, need: Need, *, scope: str | None = None
) -> Course:
    """The course, if the caller may do what `need` says in it (an API token also needs `scope`;
    a staff route without one is closed to tokens)."""
    course = session.get(Course, course_id)
    if course is None:
        raise NotFound("no such course")
    if caller.is_admin:
        return course
    if caller.token is not None:
        _authorize_token(caller, course, need, scope)
        return course
    assert caller.user is not None
    member = membership(session, course.id, caller.user.id)
    if member is None:
        raise NotFound("no such course")
    if need is Need.staff and member.role not in STAFF_ROLES:
        raise Forbidden("only the course's instructors and TAs may do this")
    if need is Need.manage and member.role is not Role.instructor:
        raise Forbidden("only the course's instructors may do this")
    return course


def _authorize_token(caller: Caller, course: Course, need: Need, scope: str | None) -> None:
    if caller.token_row.course_id != course.id:
        raise NotFound("no such course")
    if need is Need.view:
        return
    if need is Need.manage or scope is None:
        raise Forbidden("an API token cannot do this: sign in as the course's instructor")
    if not caller.has_scope(scope):
        raise Forbidden(f"this API token lacks the scope {scope}")


def may_invite(session: Session, caller: Caller, user: User) -> bool:
    """Whether the caller may make a link that sets `user`'s password: admins, and people who teach every
    course `user` belongs to or was removed from (whoever holds the link holds the account, in all of its
    courses, and in those that add them back)."""
    if caller.is_admin:
        return True
    if caller.user is None or user.is_admin:
        return False
    taught = select(Membership.course_id).where(
        Membership.user_id == caller.user.id, Membership.role == Role.instructor
    )
    for table in (Membership, FormerMembership):
        elsewhere = select(table.id).where(table.user_id == user.id, table.course_id.not_in(taught))
        if session.scalar(elsewhere.limit(1)) is not None:
            return False
    return True


def may_create_courses(session: Session, caller: Caller) -> bool:
    """Admins, and people who teach a course already."""
    if caller.is_admin:
        return True
    if caller.user is None:
        return False
    teaches = select(Membership.id).where(
        Membership.user_id == caller.user.id, Membership.role == Role.instructor
    )
    return session.scalar(teaches.limit(1)) is not None
