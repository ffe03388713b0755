"""Assignments: which catalog grades them, when they are due (and for whom later), how often one may
submit, and when students see their hidden checks."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from grader.service.db import Base, UTCDateTime, created_column, id_column


class HiddenResults(enum.StrEnum):
    never = "never"
    after_due = "after_due"
    always = "always"


class LatePolicy(enum.StrEnum):
    none = "none"  # late submissions are refused after the (student's) due date
    per_day = "per_day"  # a penalty per started day late, up to max_late_days, refused after that


class Counting(enum.StrEnum):
    best = "best"  # the submission with the highest final score counts
    last = "last"  # the latest graded submission counts


class Assignment(Base):
    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("course_id", "slug"),)

    id: Mapped[str] = id_column()
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    slug: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    catalog: Mapped[str] = mapped_column(String(100))  # an id of grader.assignments.known_assignments()
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    max_submissions: Mapped[int | None] = mapped_column(Integer)  # None: no limit
    min_interval_seconds: Mapped[int | None] = mapped_column(Integer)
    hidden_results: Mapped[HiddenResults] = mapped_column(
        Enum(HiddenResults, name="hidden_results", native_enum=False, length=20),
        default=HiddenResults.after_due,
    )
    late_policy: Mapped[LatePolicy] = mapped_column(
        Enum(LatePolicy, name="late_policy", native_enum=False, length=20), default=LatePolicy.none
    )
    penalty_per_day: Mapped[float] = mapped_column(Float, default=0.0)  # a fraction of the score
    max_late_days: Mapped[int | None] = mapped_column(Integer)  # None: no limit (per_day only)
    counting: Mapped[Counting] = mapped_column(
        Enum(Counting, name="counting", native_enum=False, length=10), default=Counting.best
    )
    canvas_assignment_id: Mapped[str | None] = mapped_column(String(100))  # names the Canvas export column
    created_at: Mapped[datetime] = created_column()


class Extension(Base):
    """A student's own due date for an assignment."""

    __tablename__ = "extensions"
    __table_args__ = (UniqueConstraint("assignment_id", "user_id"),)

    id: Mapped[str] = id_column()
    assignment_id: Mapped[str] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_column()
