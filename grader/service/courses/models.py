"""Courses and memberships: each member has one role in a course."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from grader.service.db import Base, UTCDateTime, created_column, id_column


class Role(enum.StrEnum):
    instructor = "instructor"
    ta = "ta"
    student = "student"


class Course(Base):
    __tablename__ = "courses"

    id: Mapped[str] = id_column()
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    # How a roster's login id that is not an email becomes one: "{login}@university.edu"; None: not at all.
    login_email_pattern: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = created_column()


class MemberFields:
    """What a course keeps of each member, in it and after they leave it."""

    role: Mapped[Role] = mapped_column(Enum(Role, name="role", native_enum=False, length=20))
    student_number: Mapped[str | None] = mapped_column(String(100))  # SIS user id, Moodle's ID number
    # The LMS's own ids, kept from its roster so that grade exports match back to its students.
    lms_id: Mapped[str | None] = mapped_column(String(100))  # Canvas's user ID
    sis_login_id: Mapped[str | None] = mapped_column(String(320))
    section: Mapped[str | None] = mapped_column(String(300))
    first_name: Mapped[str | None] = mapped_column(String(200))  # as the LMS splits the name (Moodle)
    last_name: Mapped[str | None] = mapped_column(String(200))

    def member_fields(self) -> dict[str, Any]:
        """These fields' values (the mixin's own annotated columns), to make the other kind of membership of
        the same person from."""
        return {name: getattr(self, name) for name in MemberFields.__annotations__}


class Membership(MemberFields, Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("course_id", "user_id"),)

    id: Mapped[str] = id_column()
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = created_column()


class FormerMembership(MemberFields, Base):
    """A member who was removed from the course, as they were: adding them back restores their role's
    history and LMS ids (which the grade exports match students by) instead of losing them."""

    __tablename__ = "former_memberships"
    __table_args__ = (UniqueConstraint("course_id", "user_id"),)

    id: Mapped[str] = id_column()
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime())
    removed_at: Mapped[datetime] = created_column()
    removed_by: Mapped[str] = mapped_column(String(100))  # the caller's key: user:<id>
