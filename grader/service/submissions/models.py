"""Submissions: immutable once committed; their files are stored by sha256 under the data dir."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Enum, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from grader.service.db import Base, created_column, id_column


class Source(enum.StrEnum):
    web = "web"
    api = "api"
    cli = "cli"


class Submission(Base):
    __tablename__ = "submissions"
    # The same Idempotency-Key from the same caller (a user or a token) names the same submission.
    __table_args__ = (UniqueConstraint("caller", "idempotency_key"),)

    id: Mapped[str] = id_column()
    assignment_id: Mapped[str] = mapped_column(ForeignKey("assignments.id"), index=True)
    student_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)  # whose work it is
    submitted_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))  # None: an API token
    caller: Mapped[str] = mapped_column(String(40))  # "user:<id>" or "token:<id>"
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[Source] = mapped_column(Enum(Source, name="source", native_enum=False, length=10))
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = created_column()


class SubmissionFile(Base):
    """One graded file of a submission: its name, and the sha256 its content is stored under."""

    __tablename__ = "submission_files"

    submission_id: Mapped[str] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    origin: Mapped[str] = mapped_column(String(1000))  # where in the upload it was found
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
