"""Telling an assignment's webhooks when final grades change: after a grade is stored, a policy changed
or an extension given, in the same transaction as the change (the outbox: a crash loses none)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.service.assignments.models import Assignment
from grader.service.courses.models import Membership, Role
from grader.service.grades.service import grade_rows
from grader.service.webhooks.service import announce_changes, hold_announcements, live_webhooks


def course_student_ids(session: Session, assignment: Assignment) -> list[str]:
    students = select(Membership.user_id).where(
        Membership.course_id == assignment.course_id, Membership.role == Role.student
    )
    return list(session.scalars(students))


def announce_grades(
    session: Session, assignment: Assignment, *, student_ids: Collection[str] | None = None
) -> int:
    """Deliveries written for the students (all of the course's: None) whose final grade changed."""
    if not live_webhooks(session, assignment.id):
        return 0  # nobody listens: the grades need not be computed
    # Lock first, then compute: two changes of one student's grade announce in turn, the later last.
    hold_announcements(session, assignment.id, student_ids or course_student_ids(session, assignment))
    return announce_changes(session, assignment, grade_rows(session, assignment, student_ids=student_ids))
