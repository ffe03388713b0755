"""A grading worker: claim a job, grade its submission through the Grader with the run's seed while a
thread beats the lease, then store the grade (only while the lease holds) or record the failure.

An infrastructure failure (the sandbox unavailable, a stored file damaged) never awards points: the run
is marked failed and the job goes back to the queue, failed for good after three.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grader.core import Grader
from grader.engine.executor import SandboxUnavailable
from grader.service.assignments.models import Assignment
from grader.service.grading import queue
from grader.service.submissions.models import Submission, SubmissionFile
from grader.service.submissions.storage import FileStore

LEASE = timedelta(seconds=120)
HEARTBEAT_SECONDS = 20.0


@dataclass(frozen=True)
class Job:
    """What grading a claimed job needs, read in one short transaction."""

    catalog: str
    files: dict[str, bytes]
    origins: dict[str, str]


def load_job(session: Session, store: FileStore, claim: queue.Claim) -> Job:
    submission = session.get(Submission, claim.submission_id)
    assert submission is not None
    assignment = session.get(Assignment, submission.assignment_id)
    assert assignment is not None
    rows = session.scalars(select(SubmissionFile).where(SubmissionFile.submission_id == submission.id))
    stored = list(rows)
    return Job(
        catalog=assignment.catalog,
        files={row.name: store.get(row.sha256) for row in stored},
        origins={row.name: row.origin for row in stored},
    )


class Heartbeat:
    """Beats the lease of a claim on a thread of its own until stopped; `lost` once a beat failed."""

    def __init__(self, sessions: sessionmaker[Session], claim: queue.Claim, interval: float) -> None:
        self.sessions, self.claim, self.interval = sessions, claim, interval
        self.stopped = threading.Event()
        self.lost = False
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat-{claim.job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()

    def _beat(self) -> None:
        while not self.stopped.wait(self.interval):
            with self.sessions.begin() as session:
                if not queue.heartbeat(session, self.claim, lease=LEASE):
                    self.lost = True
                    return


def grade_one(
    sessions: sessionmaker[Session],
    store: FileStore,
    grader: Grader,
    *,
    worker: str,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> queue.Claim | None:
    """Claim and grade one job; the claim, or None when the queue had nothing to give."""
    with sessions.begin() as session:
        claim = queue.claim(session, worker=worker, lease=LEASE)
    if claim is None:
        return None
    try:
        with sessions() as session:
            job = load_job(session, store, claim)
        with Heartbeat(sessions, claim, heartbeat_seconds):
            report = grader.grade(job.files, job.catalog, seed=claim.seed, origins=job.origins)
    except (SandboxUnavailable, OSError) as exc:
        with sessions.begin() as session:
            queue.fail(session, claim, error=f"{type(exc).__name__}: {exc}")
        return claim
    with sessions.begin() as session:
        queue.complete(
            session,
            claim,
            report=json.dumps(report.to_dict()),
            score=report.score,
            max_score=report.max_score,
            sandbox_image=report.sandbox.get("image"),
        )
    return claim
