from __future__ import annotations

from datetime import datetime

from pydantic import Field

from grader.service.accounts.models import User
from grader.service.courses.models import Membership, Role
from grader.service.schemas import Answer, Request


class CourseCreate(Request):
    slug: str = Field(max_length=100, examples=["cs231n-2026"])
    title: str = Field(max_length=300, examples=["CS231n, spring 2026"])


class CourseOut(Answer):
    id: str
    slug: str
    title: str
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
    student_number: str | None

    @classmethod
    def of(cls, member: Membership, user: User) -> MemberOut:
        return cls(
            user_id=user.id,
            email=user.email,
            name=user.name,
            role=member.role,
            student_number=member.student_number,
        )
