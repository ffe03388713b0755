"""The grading queue: a job per submission to grade (regrades too), claimed by workers with a lease and
a heartbeat; a run per attempt, kept for good with its seed, image, timings and report."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Enum, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from grader.service.db import Base, UTCDateTime, created_column, id_column, utcnow


class JobStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"  # three infrastructure failures: shown to the course's staff


class RunStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    graded = "graded"
    failed = "failed"
    abandoned = "abandoned"  # its worker lost the lease (died, or was too slow to beat)


# Lower numbers are claimed first: a mass regrade never delays a student's fresh feedback.
PRIORITY_SUBMISSION = 0
PRIORITY_REGRADE = 10


class GradingJob(Base):
    __tablename__ = "grading_jobs"
    __table_args__ = (Index("ix_grading_jobs_claimable", "status", "priority", "available_at"),)

    id: Mapped[str] = id_column()
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"), index=True)
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, name="job_status", native_enum=False, length=20), default=JobStatus.queued
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    priority: Mapped[int] = mapped_column(Integer, default=PRIORITY_SUBMISSION)
    regrade_id: Mapped[str | None] = mapped_column(ForeignKey("regrades.id"), index=True)  # a mass regrade's
    available_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_column()


class Regrade(Base):
    """A mass regrade of an assignment, asked for by its staff: its jobs carry its id (its progress)."""

    __tablename__ = "regrades"

    id: Mapped[str] = id_column()
    assignment_id: Mapped[str] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), index=True)
    requested_by: Mapped[str] = mapped_column(String(40))  # "user:<id>" or "token:<id>"
    every_submission: Mapped[bool] = mapped_column(Boolean, default=False)  # False: the counting ones
    jobs: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = created_column()


class GradingRun(Base):
    __tablename__ = "grading_runs"

    id: Mapped[str] = id_column()
    job_id: Mapped[str] = mapped_column(ForeignKey("grading_jobs.id"), index=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[RunStatus] = mapped_column(
        Enum(RunStatus, name="run_status", native_enum=False, length=20), default=RunStatus.running
    )
    worker: Mapped[str] = mapped_column(String(200))
    seed: Mapped[int] = mapped_column(Integer)
    sandbox_image: Mapped[str | None] = mapped_column(String(300))
    grader_version: Mapped[str] = mapped_column(String(50))
    started_at: Mapped[datetime] = created_column()
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    seconds: Mapped[float | None] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float)
    max_score: Mapped[float | None] = mapped_column(Float)
    report: Mapped[str | None] = mapped_column(Text)  # the `grader grade --json` document
    error: Mapped[str | None] = mapped_column(Text)  # why an infrastructure failure happened
    # While it runs, what it has done (live.py reads it): {"checks": [ids of the checks that have run],
    # "probes": [finished, in all]}, written by its worker a few times a second at most. A column of the
    # run, not a table of check rows: one row per run and one writer (the run's worker), rewritten in
    # place in one short UPDATE of that row alone; rows per check would cost an INSERT per check and
    # leave rows to clean up. None until the first probes finished.
    progress: Mapped[str | None] = mapped_column(Text)
