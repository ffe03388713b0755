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
from grader.service.grades.service import GradeRow, own_rows
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
    """A few queries per course, whatever its assignments (the student's rows are read at once)."""
    assert viewer.user is not None
    blocks = []
    for course in courses_of(session, viewer):
        member = membership(session, course.id, viewer.user.id)
        is_staff = viewer.is_admin or (member is not None and member.role in STAFF_ROLES)
        assignments = assignments_of(session, course)
        rows = {} if is_staff else own_rows(session, viewer.user, assignments)
        blocks.append(CourseBlock(course, is_staff, [_line(a, rows.get(a.id)) for a in assignments]))
    return blocks


def _line(assignment: Assignment, row: GradeRow | None) -> AssignmentLine:
    if row is None:  # staff: no attempts of their own
        return AssignmentLine(assignment, assignment.due_at, None, None, None)
    limit = assignment.max_submissions
    left = None if limit is None else max(0, limit - row.submissions)
    return AssignmentLine(assignment, row.due_at or assignment.due_at, row.submissions, left, row)


@router.get("/")
def home(request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    return render(request, "home.html", {"courses": course_blocks(session, viewer)}, viewer=viewer)
