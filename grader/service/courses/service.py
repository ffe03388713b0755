"""Courses and their members."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.service.accounts.caller import Caller
from grader.service.accounts.models import User
from grader.service.accounts.service import create_user, find_user
from grader.service.courses.access import may_create_courses, membership
from grader.service.courses.models import Course, Membership, Role
from grader.service.errors import Conflict, Forbidden, InvalidInput

SLUG = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


def check_slug(slug: str) -> str:
    if not SLUG.fullmatch(slug):
        raise InvalidInput(
            f"{slug!r} is not a slug: use 1 to 100 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return slug


def create_course(session: Session, caller: Caller, *, slug: str, title: str) -> Course:
    """A new course, its creator its instructor (an admin who creates one does not join it)."""
    if not may_create_courses(session, caller):
        raise Forbidden("only admins and instructors may create courses")
    check_slug(slug)
    if not title.strip():
        raise InvalidInput("a course needs a title")
    if session.scalar(select(Course.id).where(Course.slug == slug)) is not None:
        raise Conflict(f"a course with the slug {slug!r} exists already")
    course = Course(slug=slug, title=title.strip())
    session.add(course)
    session.flush()
    if caller.user is not None and not caller.is_admin:
        session.add(Membership(course_id=course.id, user_id=caller.user.id, role=Role.instructor))
        session.flush()
    return course


def courses_of(session: Session, caller: Caller) -> list[Course]:
    """The courses the caller belongs to (every course, for an admin; its own, for an API token)."""
    query = select(Course).order_by(Course.created_at, Course.id)
    if caller.is_admin:
        return list(session.scalars(query))
    if caller.token is not None:
        return list(session.scalars(query.where(Course.id == caller.token.course_id)))
    assert caller.user is not None
    mine = select(Membership.course_id).where(Membership.user_id == caller.user.id)
    return list(session.scalars(query.where(Course.id.in_(mine))))


def put_member(
    session: Session, course: Course, *, email: str, name: str, role: Role, student_number: str | None
) -> tuple[Membership, User, bool]:
    """Add the person (created without a password if new) or change their role and student number;
    whether the membership is new. A person keeps the name they have: a course cannot rename them."""
    user = find_user(session, email=email) or create_user(session, email=email, name=name, password=None)
    member = membership(session, course.id, user.id)
    created = member is None
    if member is None:
        member = Membership(course_id=course.id, user_id=user.id, role=role)
        session.add(member)
    member.role, member.student_number = role, student_number
    session.flush()
    return member, user, created


def members_of(session: Session, course: Course) -> list[tuple[Membership, User]]:
    rows = session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.course_id == course.id)
        .order_by(User.email_key)
    )
    return [(member, user) for member, user in rows]
