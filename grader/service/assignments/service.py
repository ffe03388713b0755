"""Assignments: created and changed by a course's instructors, graded by a known catalog."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.assignments import known_assignments
from grader.service.accounts.caller import Caller
from grader.service.accounts.models import User
from grader.service.accounts.service import find_user
from grader.service.assignments.models import Assignment, Extension
from grader.service.courses.access import Need, authorize_course, membership
from grader.service.courses.models import Course, Role
from grader.service.courses.service import check_slug
from grader.service.errors import Conflict, InvalidInput, NotFound


def check_catalog(catalog: str) -> str:
    known = known_assignments()
    if catalog not in known:
        raise InvalidInput(f"unknown catalog {catalog!r}; known: {', '.join(sorted(known))}")
    return catalog


def _check_unique_slug(session: Session, course_id: str, slug: str, *, other_than: str | None = None) -> None:
    taken = select(Assignment.id).where(Assignment.course_id == course_id, Assignment.slug == slug)
    if other_than is not None:
        taken = taken.where(Assignment.id != other_than)
    if session.scalar(taken) is not None:
        raise Conflict(f"this course has an assignment with the slug {slug!r} already")


def create_assignment(session: Session, course: Course, **fields: Any) -> Assignment:
    check_slug(fields["slug"])
    check_catalog(fields["catalog"])
    if not fields["title"]:
        raise InvalidInput("an assignment needs a title")
    _check_unique_slug(session, course.id, fields["slug"])
    assignment = Assignment(course_id=course.id, **fields)
    session.add(assignment)
    session.flush()
    return assignment


def assignments_of(session: Session, course: Course) -> list[Assignment]:
    query = select(Assignment).where(Assignment.course_id == course.id)
    return list(session.scalars(query.order_by(Assignment.due_at, Assignment.slug)))


def authorize_assignment(
    session: Session, caller: Caller, assignment_id: str, need: Need, *, scope: str | None = None
) -> Assignment:
    """The assignment, if the caller may do what `need` says in its course (NotFound as for courses)."""
    assignment = session.get(Assignment, assignment_id)
    if assignment is None:
        raise NotFound("no such assignment")
    try:
        authorize_course(session, caller, assignment.course_id, need, scope=scope)
    except NotFound as exc:
        raise NotFound("no such assignment") from exc
    return assignment


def change_assignment(session: Session, assignment: Assignment, changes: dict[str, Any]) -> Assignment:
    """Apply the fields given (None clears the limits; a required field cannot be cleared)."""
    required_fields = ("slug", "title", "catalog", "due_at", "hidden_results", "late_policy", "counting")
    for required in (*required_fields, "penalty_per_day"):
        if required in changes and changes[required] is None:
            raise InvalidInput(f"{required} cannot be null")
    if "title" in changes and not changes["title"]:
        raise InvalidInput("an assignment needs a title")
    if "slug" in changes:
        check_slug(changes["slug"])
        _check_unique_slug(session, assignment.course_id, changes["slug"], other_than=assignment.id)
    if "catalog" in changes:
        check_catalog(changes["catalog"])
    for name, value in changes.items():
        setattr(assignment, name, value)
    session.flush()
    return assignment


def course_student(session: Session, course_id: str, email: str) -> User:
    """The course's student with this email; NotFound for anyone else."""
    user = find_user(session, email=email)
    member = membership(session, course_id, user.id) if user is not None else None
    if user is None or member is None or member.role is not Role.student:
        raise NotFound(f"{email} is not a student of this course")
    return user


def put_extension(
    session: Session, assignment: Assignment, *, email: str, due_at: datetime
) -> tuple[Extension, User, bool]:
    """Give the student their own due date (or change it); whether it is new."""
    student = course_student(session, assignment.course_id, email)
    extension = session.scalar(
        select(Extension).where(Extension.assignment_id == assignment.id, Extension.user_id == student.id)
    )
    created = extension is None
    if extension is None:
        extension = Extension(assignment_id=assignment.id, user_id=student.id, due_at=due_at)
        session.add(extension)
    extension.due_at = due_at
    session.flush()
    return extension, student, created
