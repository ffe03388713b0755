"""Courses and members: /api/v1/courses..."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from grader.service.courses import service
from grader.service.courses.access import Need, authorize_course
from grader.service.courses.schemas import CourseCreate, CourseOut, MemberOut, MemberPut
from grader.service.deps import CallerDep, SessionDep

router = APIRouter(prefix="/api/v1", tags=["courses"])


@router.post("/courses", status_code=status.HTTP_201_CREATED)
def create_course(body: CourseCreate, session: SessionDep, caller: CallerDep) -> CourseOut:
    """A new course (admins and instructors); its creator becomes its instructor."""
    return CourseOut.model_validate(service.create_course(session, caller, slug=body.slug, title=body.title))


@router.get("/courses")
def list_courses(session: SessionDep, caller: CallerDep) -> list[CourseOut]:
    """The courses the caller belongs to (all of them, for an admin)."""
    return [CourseOut.model_validate(course) for course in service.courses_of(session, caller)]


@router.post("/courses/{course_id}/members", status_code=status.HTTP_201_CREATED)
def put_member(
    course_id: str, body: MemberPut, session: SessionDep, caller: CallerDep, response: Response
) -> MemberOut:
    """Add a person to the course (201; they are created, without a password, if new), or change their
    role and student number (200)."""
    course = authorize_course(session, caller, course_id, Need.manage)
    member, user, created = service.put_member(
        session,
        course,
        email=body.email,
        name=body.name,
        role=body.role,
        student_number=body.student_number,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return MemberOut.of(member, user)


@router.get("/courses/{course_id}/members")
def list_members(course_id: str, session: SessionDep, caller: CallerDep) -> list[MemberOut]:
    """The course's members (staff only)."""
    course = authorize_course(session, caller, course_id, Need.staff)
    return [MemberOut.of(member, user) for member, user in service.members_of(session, course)]
