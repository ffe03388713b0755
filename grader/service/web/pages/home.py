"""Home: the viewer's courses, each with its assignments, due dates, attempts and the student's score."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from grader.service.accounts.caller import Caller
from grader.service.assignments.models import Assignment
from grader.service.assignments.service import assignments_of
from grader.service.courses.access import STAFF_ROLES, membership
from grader.service.courses.models import Course
from grader.service.courses.service import courses_of
from grader.service.deps import SessionDep
from grader.service.grades.service import GradeRow, grades_for
from grader.service.submissions.service import due_for
from grader.service.web.browser import ViewerDep
from grader.service.web.rendering import render

router = APIRouter(include_in_schema=False)


@dataclass
class AssignmentLine:
    assignment: Assignment
    due_at: datetime  # the viewer's own, with an extension
    attempts_used: int | None  # students only
    attempts_left: int | None  # None: no limit
    grade: GradeRow | None  # students only


@dataclass
class CourseBlock:
    course: Course
    is_staff: bool
    assignments: list[AssignmentLine]


def course_blocks(session: Session, viewer: Caller) -> list[CourseBlock]:
    assert viewer.user is not None
    blocks = []
    for course in courses_of(session, viewer):
        member = membership(session, course.id, viewer.user.id)
        is_staff = viewer.is_admin or (member is not None and member.role in STAFF_ROLES)
        lines = [
            _line(session, viewer, assignment, is_staff) for assignment in assignments_of(session, course)
        ]
        blocks.append(CourseBlock(course, is_staff, lines))
    return blocks


def _line(session: Session, viewer: Caller, assignment: Assignment, is_staff: bool) -> AssignmentLine:
    if is_staff:
        return AssignmentLine(assignment, assignment.due_at, None, None, None)
    assert viewer.user is not None
    _, (row,) = grades_for(session, viewer, assignment.id)
    left = (
        None if assignment.max_submissions is None else max(0, assignment.max_submissions - row.submissions)
    )
    return AssignmentLine(
        assignment, due_for(session, assignment, viewer.user.id), row.submissions, left, row
    )


@router.get("/")
def home(request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    return render(request, "home.html", {"courses": course_blocks(session, viewer)}, viewer=viewer)
