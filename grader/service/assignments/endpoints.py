"""Assignments and extensions: /api/v1/courses/{id}/assignments, /api/v1/assignments/{id}..."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from grader.service.assignments import service
from grader.service.assignments.schemas import (
    AssignmentCreate,
    AssignmentOut,
    AssignmentPatch,
    ExtensionOut,
    ExtensionPut,
)
from grader.service.courses.access import Need, authorize_course
from grader.service.deps import CallerDep, SessionDep
from grader.service.grades.announce import announce_grades
from grader.service.schemas import errors

router = APIRouter(prefix="/api/v1", tags=["assignments"], responses=errors(401, 403, 404, 422))


@router.post("/courses/{course_id}/assignments", status_code=status.HTTP_201_CREATED, responses=errors(409))
def create_assignment(
    course_id: str, body: AssignmentCreate, session: SessionDep, caller: CallerDep
) -> AssignmentOut:
    """A new assignment of the course (its instructors), graded by a known catalog."""
    course = authorize_course(session, caller, course_id, Need.manage)
    return AssignmentOut.model_validate(service.create_assignment(session, course, **body.model_dump()))


@router.get("/courses/{course_id}/assignments")
def list_assignments(course_id: str, session: SessionDep, caller: CallerDep) -> list[AssignmentOut]:
    """The course's assignments, by due date."""
    course = authorize_course(session, caller, course_id, Need.view)
    return [
        AssignmentOut.model_validate(assignment) for assignment in service.assignments_of(session, course)
    ]


@router.get("/assignments/{assignment_id}")
def get_assignment(assignment_id: str, session: SessionDep, caller: CallerDep) -> AssignmentOut:
    return AssignmentOut.model_validate(
        service.authorize_assignment(session, caller, assignment_id, Need.view)
    )


@router.patch("/assignments/{assignment_id}", responses=errors(409))
def change_assignment(
    assignment_id: str, body: AssignmentPatch, session: SessionDep, caller: CallerDep
) -> AssignmentOut:
    """Change the fields given (the course's instructors)."""
    assignment = service.authorize_assignment(session, caller, assignment_id, Need.manage)
    changes = body.model_dump(exclude_unset=True)
    changed = service.change_assignment(session, assignment, changes)
    announce_grades(session, changed)  # a new due date or policy changes final grades
    return AssignmentOut.model_validate(changed)


@router.post("/assignments/{assignment_id}/extensions", status_code=status.HTTP_201_CREATED)
def put_extension(
    assignment_id: str, body: ExtensionPut, session: SessionDep, caller: CallerDep, response: Response
) -> ExtensionOut:
    """A student's own due date (staff): 201 new, 200 changed."""
    assignment = service.authorize_assignment(session, caller, assignment_id, Need.staff)
    extension, student, created = service.put_extension(
        session, assignment, email=body.email, due_at=body.due_at
    )
    announce_grades(session, assignment, student_ids=[student.id])
    if not created:
        response.status_code = status.HTTP_200_OK
    return ExtensionOut(
        assignment_id=assignment.id, email=student.email, name=student.name, due_at=extension.due_at
    )
