"""The grading queue, in the database: no second system to lose a job.

A worker claims a job with a lease, keeps it with heartbeats, and stores a grade only while it holds the
lease; every claim starts a run, kept for good. Claims and stores are conditional updates (the row
changes only if it is still as the worker saw it), so that two workers never hold one job and a worker
that lost its lease (it died, or stalled past the lease) can never store a grade. On PostgreSQL the
claim also skips rows other workers are locking (FOR UPDATE SKIP LOCKED), so many workers share the
queue without waiting on each other; on SQLite the same conditional update decides.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.metadata import version

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from grader.service.db import utcnow
from grader.service.grading.models import (
    PRIORITY_SUBMISSION,
    GradingJob,
    GradingRun,
    JobStatus,
    RunStatus,
)

MAX_INFRASTRUCTURE_FAILURES = 3
RETRY_DELAY = timedelta(seconds=10)
GRADER_VERSION = version("grader")


@dataclass(frozen=True)
class Claim:
    """A job a worker holds, and the run it started."""

    job_id: str
    run_id: str
    submission_id: str
    seed: int
    attempt: int
    worker: str


def enqueue(
    session: Session,
    *,
    submission_id: str,
    priority: int = PRIORITY_SUBMISSION,
    regrade_id: str | None = None,
) -> GradingJob:
    """A job to grade the submission, committed with it by the caller (in the same transaction)."""
    job = GradingJob(
        submission_id=submission_id,
        status=JobStatus.queued,
        available_at=utcnow(),
        priority=priority,
        regrade_id=regrade_id,
    )
    session.add(job)
    session.flush()
    return job


# The order jobs are claimed in: fresh submissions before regrades, then the oldest (the id only breaks
# ties, so that a place in the queue is the same for every reader).
CLAIM_ORDER = (GradingJob.priority, GradingJob.available_at, GradingJob.id)


def _claimable(now: datetime) -> ColumnElement[bool]:
    queued = (GradingJob.status == JobStatus.queued) & (GradingJob.available_at <= now)
    expired = (GradingJob.status == JobStatus.running) & (GradingJob.lease_expires_at < now)
    return or_(queued, expired)


def claim(session: Session, *, worker: str, lease: timedelta, now: datetime | None = None) -> Claim | None:
    """Take the most urgent claimable job (queued, or running under an expired lease: fresh submissions
    before regrades, then the oldest) and start its run; None if there is none. The caller commits at
    once: the claim is its own short transaction."""
    now = now or utcnow()
    candidates = select(GradingJob).where(_claimable(now)).order_by(*CLAIM_ORDER).limit(5)
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    for job in session.scalars(candidates).all():
        taken = session.execute(
            update(GradingJob)
            .where(GradingJob.id == job.id, GradingJob.attempts == job.attempts, _claimable(now))
            .values(
                status=JobStatus.running,
                attempts=GradingJob.attempts + 1,
                lease_owner=worker,
                lease_expires_at=now + lease,
            )
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            continue  # another worker took it between our read and our write
        _abandon_runs(session, job.id, now)
        run = GradingRun(
            job_id=job.id,
            submission_id=job.submission_id,
            attempt=job.attempts + 1,
            status=RunStatus.running,
            worker=worker,
            seed=secrets.randbelow(2**31),
            grader_version=GRADER_VERSION,
            started_at=now,
            heartbeat_at=now,
        )
        session.add(run)
        session.flush()
        return Claim(job.id, run.id, job.submission_id, run.seed, run.attempt, worker)
    return None


def jobs_ahead(session: Session, job: GradingJob, *, now: datetime | None = None) -> int:
    """How many jobs workers will claim before `job` (a waiting one): those waiting, or held under an
    expired lease, that come first in the claim order (one waiting out its retry delay too: it is claimed
    first once the delay is over). One query, whatever the queue's length."""
    now = now or utcnow()
    waiting = (GradingJob.status == JobStatus.queued) | (
        (GradingJob.status == JobStatus.running) & (GradingJob.lease_expires_at < now)
    )
    priority, available_at, job_id = CLAIM_ORDER
    # CLAIM_ORDER < the job's, spelt out: each value bound with its column's type (the times as stored).
    first = or_(
        priority < job.priority,
        (priority == job.priority) & (available_at < job.available_at),
        (priority == job.priority) & (available_at == job.available_at) & (job_id < job.id),
    )
    return session.scalar(select(func.count()).select_from(GradingJob).where(waiting, first)) or 0


def _abandon_runs(session: Session, job_id: str, now: datetime) -> None:
    """The runs of a job still marked running belong to workers that lost its lease (ended as
    `_end_run` ends a run: with their seconds)."""
    running = select(GradingRun).where(GradingRun.job_id == job_id, GradingRun.status == RunStatus.running)
    for run in session.scalars(running):
        run.status, run.finished_at = RunStatus.abandoned, now
        run.seconds = (now - run.started_at).total_seconds()
    session.flush()


def _holds(claim: Claim, now: datetime) -> ColumnElement[bool]:
    return (
        (GradingJob.id == claim.job_id)
        & (GradingJob.status == JobStatus.running)
        & (GradingJob.lease_owner == claim.worker)
        & (GradingJob.attempts == claim.attempt)
        & (GradingJob.lease_expires_at >= now)
    )


def _update_held(session: Session, claim: Claim, now: datetime, **values: object) -> bool:
    """Change the claimed job only while the worker still holds its lease; whether it did."""
    changed = session.execute(
        update(GradingJob)
        .where(_holds(claim, now))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(changed.rowcount == 1)  # type: ignore[attr-defined]


def heartbeat(session: Session, claim: Claim, *, lease: timedelta, now: datetime | None = None) -> bool:
    """Extend the lease; False if the worker lost it (it must stop: it can store nothing)."""
    now = now or utcnow()
    if not _update_held(session, claim, now, lease_expires_at=now + lease):
        return False
    session.execute(update(GradingRun).where(GradingRun.id == claim.run_id).values(heartbeat_at=now))
    return True


def record_progress(session: Session, claim: Claim, progress: str, *, now: datetime | None = None) -> bool:
    """Write the run's progress, only while the worker holds the lease (as a grade is stored); False if
    it lost it. The update changes the run's row alone: the job's is read, never locked (on PostgreSQL
    a claim skips or takes the job's row whatever a progress does)."""
    now = now or utcnow()
    held = select(GradingJob.id).where(_holds(claim, now)).exists()
    written = session.execute(
        update(GradingRun)
        .where(GradingRun.id == claim.run_id, GradingRun.status == RunStatus.running, held)
        .values(progress=progress)
        .execution_options(synchronize_session=False)
    )
    return bool(written.rowcount == 1)  # type: ignore[attr-defined]


def complete(
    session: Session,
    claim: Claim,
    *,
    report: str,
    score: float,
    max_score: float,
    sandbox_image: str | None,
    now: datetime | None = None,
) -> bool:
    """Store the run's grade and end the job, only while the worker holds the lease; False (nothing
    stored, the run abandoned) if it lost it."""
    now = now or utcnow()
    if not _update_held(session, claim, now, status=JobStatus.done, lease_owner=None, lease_expires_at=None):
        _abandon_run(session, claim, now)
        return False
    _end_run(
        session,
        claim,
        RunStatus.graded,
        now,
        report=report,
        score=score,
        max_score=max_score,
        sandbox_image=sandbox_image,
    )
    return True


def fail(session: Session, claim: Claim, *, error: str, now: datetime | None = None) -> JobStatus | None:
    """An infrastructure failure (never the submission's): the run failed and awards nothing; the job
    goes back to the queue, or is failed for good after three. None if the worker had lost the lease."""
    now = now or utcnow()
    gives_up = claim.attempt >= MAX_INFRASTRUCTURE_FAILURES
    status = JobStatus.failed if gives_up else JobStatus.queued
    released = _update_held(
        session,
        claim,
        now,
        status=status,
        lease_owner=None,
        lease_expires_at=None,
        available_at=now + RETRY_DELAY,
    )
    if not released:
        _abandon_run(session, claim, now)
        return None
    _end_run(session, claim, RunStatus.failed, now, error=error[:10_000])
    return status


def _abandon_run(session: Session, claim: Claim, now: datetime) -> None:
    """The worker lost the lease: its run, if it is still running, is abandoned (a finished one stays)."""
    run = session.get(GradingRun, claim.run_id)
    if run is not None and run.status == RunStatus.running:
        _end_run(session, claim, RunStatus.abandoned, now)


def _end_run(session: Session, claim: Claim, status: RunStatus, now: datetime, **fields: object) -> None:
    """End the claim's run with `status`, and what it leaves on record (its report, or its error)."""
    run = session.get(GradingRun, claim.run_id)
    assert run is not None
    run.status, run.finished_at = status, now
    run.seconds = (now - run.started_at).total_seconds()
    for name, value in fields.items():
        if name not in GradingRun.__table__.columns:
            raise TypeError(f"a grading run has no column {name!r}")
        setattr(run, name, value)
    session.flush()
