"""Courses and members: /api/v1/courses..."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, File, Query, Response, UploadFile, status

from grader.service.accounts.invites import invite_expires_at, invite_url, issue_invite
from grader.service.courses import service
from grader.service.courses.access import Need, authorize_course
from grader.service.courses.roster import MAX_ROSTER_BYTES
from grader.service.courses.schemas import (
    CourseCreate,
    CourseOut,
    CoursePatch,
    InviteOut,
    MemberOut,
    MemberPut,
    RosterReport,
)
from grader.service.deps import CallerDep, SessionDep, SettingsDep
from grader.service.schemas import errors

router = APIRouter(prefix="/api/v1", tags=["courses"], responses=errors(401, 403, 404, 422))


@router.post("/courses", status_code=status.HTTP_201_CREATED)
def create_course(body: CourseCreate, session: SessionDep, caller: CallerDep) -> CourseOut:
    """A new course (admins and instructors); its creator becomes its instructor."""
    return CourseOut.model_validate(service.create_course(session, caller, slug=body.slug, title=body.title))


@router.get("/courses")
def list_courses(session: SessionDep, caller: CallerDep) -> list[CourseOut]:
    """The courses the caller belongs to (all of them, for an admin)."""
    return [CourseOut.model_validate(course) for course in service.courses_of(session, caller)]


@router.patch("/courses/{course_id}")
def change_course(course_id: str, body: CoursePatch, session: SessionDep, caller: CallerDep) -> CourseOut:
    """Change the fields given (the course's instructors)."""
    course = authorize_course(session, caller, course_id, Need.manage)
    return CourseOut.model_validate(
        service.change_course(session, course, body.model_dump(exclude_unset=True))
    )


@router.post("/courses/{course_id}/members", status_code=status.HTTP_201_CREATED, responses=errors(409))
def put_member(
    course_id: str, body: MemberPut, session: SessionDep, caller: CallerDep, response: Response
) -> MemberOut:
    """Add a person to the course (201; they are created, without a password, if new), or change their
    role and student number (200). 409 for a change of the caller's own role, or of the last instructor's."""
    course = authorize_course(session, caller, course_id, Need.manage)
    member, user, created = service.put_member(
        session,
        caller,
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


@router.delete(
    "/courses/{course_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(409),
)
def remove_member(course_id: str, user_id: str, session: SessionDep, caller: CallerDep) -> Response:
    """Take a person out of the course (the course's instructors): they lose access to it and leave its
    grades and exports; their account, submissions and grades are kept, and adding them back (POST
    .../members, or a roster import) restores them. 409 for the caller themselves or the last instructor."""
    course = authorize_course(session, caller, course_id, Need.manage)
    service.remove_member(session, caller, course, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/courses/{course_id}/members/{user_id}/invite",
    status_code=status.HTTP_201_CREATED,
    responses=errors(409),
)
def invite_member(
    course_id: str, user_id: str, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> InviteOut:
    """A one-time link for a member who has no password yet (the course's instructors): it sets their
    password, until GRADER_INVITE_HOURS have passed; no mail is sent. 409 for a member who has a password,
    403 for one who belongs to a course the caller does not teach (an admin can)."""
    course = authorize_course(session, caller, course_id, Need.manage)
    user = service.invitable_member(session, caller, course, user_id)
    lifetime = timedelta(hours=settings.invite_hours)
    token = issue_invite(user, secret=settings.secret_key.get_secret_value(), lifetime=lifetime)
    return InviteOut(url=invite_url(settings.public_url, token), expires_at=invite_expires_at(token))


@router.post("/courses/{course_id}/roster", responses=errors(409, 413))
def import_roster(
    course_id: str,
    session: SessionDep,
    caller: CallerDep,
    file: Annotated[
        UploadFile, File(description="a Canvas gradebook export, a Moodle export or a plain CSV")
    ],
    dry_run: Annotated[bool, Query(description="report what would change, change nothing")] = False,
    partial: Annotated[bool, Query(description="import the good rows even if others are bad")] = False,
) -> RosterReport:
    """Add a roster's people to the course and update its members' roles and LMS ids (the course's
    instructors); nobody is removed. A file with any bad row changes nothing, unless partial=true: the
    answer lists every row that cannot be imported, with its line and why (applied: false)."""
    course = authorize_course(session, caller, course_id, Need.manage)
    data = file.file.read(MAX_ROSTER_BYTES + 1)
    result = service.import_roster(session, course, caller, data, dry_run=dry_run, partial=partial)
    return RosterReport.of(result)
