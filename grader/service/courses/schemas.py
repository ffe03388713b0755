from __future__ import annotations

from datetime import datetime

from pydantic import Field

from grader.service.accounts.models import User
from grader.service.courses.models import Membership, Role
from grader.service.courses.roster import RosterFormat
from grader.service.courses.service import ImportedMember, RosterImport
from grader.service.schemas import Answer, Request


class CourseCreate(Request):
    slug: str = Field(max_length=100, examples=["cs231n-2026"])
    title: str = Field(max_length=300, examples=["CS231n, spring 2026"])


class CoursePatch(Request):
    """Only the fields given change; null clears login_email_pattern."""

    title: str | None = Field(None, max_length=300)
    login_email_pattern: str | None = Field(
        None,
        max_length=300,
        description="makes a roster's login id that is not an email into one; contains {login} once",
        examples=["{login}@university.edu"],
    )


class CourseOut(Answer):
    id: str
    slug: str
    title: str
    login_email_pattern: str | None
    created_at: datetime


class MemberPut(Request):
    email: str = Field(max_length=320)
    name: str = Field(max_length=200)
    role: Role
    student_number: str | None = Field(None, max_length=100)


class MemberOut(Answer):
    user_id: str
    email: str
    name: str
    role: Role
    student_number: str | None = Field(description="the SIS user id (Canvas), the ID number (Moodle)")
    lms_id: str | None = Field(description="Canvas's user ID")
    sis_login_id: str | None
    section: str | None
    first_name: str | None = Field(description="as the LMS splits the name")
    last_name: str | None

    @classmethod
    def of(cls, member: Membership, user: User) -> MemberOut:
        return cls(
            user_id=user.id,
            email=user.email,
            name=user.name,
            role=member.role,
            student_number=member.student_number,
            lms_id=member.lms_id,
            sis_login_id=member.sis_login_id,
            section=member.section,
            first_name=member.first_name,
            last_name=member.last_name,
        )


class InviteOut(Answer):
    url: str = Field(
        description="a one-time link that lets the member set their password: give it to them only",
        examples=["https://grader.example.org/invite/eyJhbGciOiJIUzI1NiIs..."],
    )
    expires_at: datetime = Field(description="when the link stops working (GRADER_INVITE_HOURS after now)")


class FieldChangeOut(Answer):
    before: str | None
    after: str | None


class RosterMemberOut(Answer):
    line: int = Field(description="the file's line the row starts on (the header is line 1)")
    email: str
    name: str
    role: Role
    new_user: bool = Field(description="the person had no account: one is made, without a password")
    student_number: str | None
    lms_id: str | None
    sis_login_id: str | None
    section: str | None
    first_name: str | None
    last_name: str | None
    changes: dict[str, FieldChangeOut] = Field(description="updated: each changed field, before and after")

    @classmethod
    def of(cls, imported: ImportedMember) -> RosterMemberOut:
        return cls(
            line=imported.line,
            email=imported.email,
            name=imported.name,
            role=imported.role,
            new_user=imported.new_user,
            **imported.fields,
            changes={
                name: FieldChangeOut(before=change.before, after=change.after)
                for name, change in imported.changes.items()
            },
        )


class RowProblemOut(Answer):
    line: int
    reason: str


class RosterReport(Answer):
    format: RosterFormat = Field(description="the roster the header was read as")
    dry_run: bool
    partial: bool
    applied: bool = Field(
        description="whether the course changed: false for a dry run, and for a file with errors "
        "unless partial=true"
    )
    created: list[RosterMemberOut] = Field(description="new members (and new accounts: new_user)")
    updated: list[RosterMemberOut]
    unchanged: list[RosterMemberOut]
    skipped: list[RowProblemOut] = Field(description="rows left out on purpose: Canvas's test student")
    errors: list[RowProblemOut] = Field(description="rows that cannot be imported, with why")

    @classmethod
    def of(cls, result: RosterImport) -> RosterReport:
        return cls(
            format=result.format,
            dry_run=result.dry_run,
            partial=result.partial,
            applied=result.applied,
            created=[RosterMemberOut.of(member) for member in result.created],
            updated=[RosterMemberOut.of(member) for member in result.updated],
            unchanged=[RosterMemberOut.of(member) for member in result.unchanged],
            skipped=[RowProblemOut.model_validate(problem) for problem in result.skipped],
            errors=[RowProblemOut.model_validate(problem) for problem in result.errors],
        )
