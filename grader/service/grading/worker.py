"""A grading worker: claim a job, grade its submission through the Grader with the run's seed while a
thread beats the lease (and another records the checks that have run, for the live page), then store the
grade (only while the lease holds) or record the failure.

An infrastructure failure (the sandbox unavailable, a stored file damaged) never awards points: the run
is marked failed and the job goes back to the queue, failed for good after three.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grader.core import Grader
from grader.engine.executor import SandboxUnavailable
from grader.service.assignments.models import Assignment
from grader.service.db import make_engine, session_factory
from grader.service.grades.announce import announce_grades
from grader.service.grading import queue
from grader.service.metrics import GRADING_SECONDS, GRADINGS
from grader.service.migrate import upgrade
from grader.service.submissions.models import Submission, SubmissionFile
from grader.service.submissions.storage import FileStore
from grader.service.webhooks.delivery import run_deliveries
from grader.settings import Settings

log = logging.getLogger("grader.worker")


# A running grading's progress is written at most this often (seconds): the live page polls about as often.
PROGRESS_INTERVAL = 0.5


@dataclass(frozen=True)
class Timing:
    """How long a claim holds, how often it is renewed, how long an idle worker waits (from Settings), and
    how often a grading's progress is written at most."""

    lease: timedelta
    heartbeat: float
    poll: float
    progress: float = PROGRESS_INTERVAL

    @classmethod
    def of(cls, settings: Settings) -> Timing:
        lease = timedelta(seconds=settings.worker_lease_seconds)
        return cls(lease, settings.worker_heartbeat_seconds, settings.worker_poll_seconds)


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


def announce_graded(session: Session, submission_id: str) -> None:
    """The student's final grade may have changed with this grade: tell the webhooks."""
    submission = session.get(Submission, submission_id)
    assert submission is not None
    assignment = session.get(Assignment, submission.assignment_id)
    assert assignment is not None
    announce_grades(session, assignment, student_ids=[submission.student_id])


class Heartbeat:
    """Beats the lease of a claim on a thread of its own until stopped; `lost` once a beat failed."""

    def __init__(
        self, sessions: sessionmaker[Session], claim: queue.Claim, interval: float, lease: timedelta
    ) -> None:
        self.sessions, self.claim, self.interval, self.lease = sessions, claim, interval, lease
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
            try:
                with self.sessions.begin() as session:
                    held = queue.heartbeat(session, self.claim, lease=self.lease)
            except Exception:  # one beat missed (the database busy): the next may reach it within the lease
                log.exception("a heartbeat of job %s failed", self.claim.job_id)
                continue
            if not held:
                self.lost = True
                return


class ProgressRecorder:
    """Records a grading's progress (the checks that have run) into its run, on a thread of its own: the
    grading's callback only notes it, so the grading never waits for the database. At most one write an
    `interval`, each its own short transaction, and the last state once stopped; none once the lease is
    lost (`lost`), as no grade is stored then."""

    def __init__(self, sessions: sessionmaker[Session], claim: queue.Claim, interval: float) -> None:
        self.sessions, self.claim, self.interval = sessions, claim, interval
        self.lock = threading.Lock()
        self.noted: tuple[int, str] = (0, "")  # (how many notes so far, the last one)
        self.written = 0  # the number of the note written last
        self.woken, self.stopped = threading.Event(), threading.Event()
        self.lost = False
        self.thread = threading.Thread(target=self._record, name=f"progress-{claim.job_id}", daemon=True)

    def __call__(self, checks: tuple[str, ...], finished: int, total: int) -> None:
        """Grader.grade's checks_progress callback."""
        note = json.dumps({"checks": list(checks), "probes": [finished, total]})
        with self.lock:
            count, last = self.noted
            if note != last:
                self.noted = (count + 1, note)
                self.woken.set()

    def __enter__(self) -> ProgressRecorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.woken.set()
        self.thread.join()

    def _record(self) -> None:
        while not self.lost:
            self.woken.wait()
            self.woken.clear()
            self._write()
            if self.stopped.wait(self.interval):  # stopped: the last state, if it is newer
                self._write()
                return

    def _write(self) -> None:
        with self.lock:
            count, note = self.noted
        if count == self.written or self.lost:
            return
        try:
            with self.sessions.begin() as session:
                held = queue.record_progress(session, self.claim, note)
        except Exception:  # the database busy: a later note says more anyway
            log.exception("recording the progress of job %s failed", self.claim.job_id)
            return
        self.written = count
        self.lost = not held


def grade_one(
    sessions: sessionmaker[Session],
    store: FileStore,
    grader: Grader,
    *,
    worker: str,
    timing: Timing,
) -> queue.Claim | None:
    """Claim and grade one job; the claim, or None when the queue had nothing to give."""
    with sessions.begin() as session:
        claim = queue.claim(session, worker=worker, lease=timing.lease)
    if claim is None:
        return None
    started = time.monotonic()
    try:
        with sessions() as session:
            job = load_job(session, store, claim)
        with (
            Heartbeat(sessions, claim, timing.heartbeat, timing.lease),
            ProgressRecorder(sessions, claim, timing.progress) as recorder,
        ):
            report = grader.grade(
                job.files, job.catalog, seed=claim.seed, origins=job.origins, checks_progress=recorder
            )
    except (SandboxUnavailable, OSError) as exc:
        with sessions.begin() as session:
            outcome = queue.fail(session, claim, error=f"{type(exc).__name__}: {exc}")
        GRADINGS.labels(outcome="failed" if outcome is not None else "lost").inc()
        log.warning(
            "submission %s, attempt %d: %s (job %s)", claim.submission_id, claim.attempt, exc, outcome
        )
        return claim
    with sessions.begin() as session:
        stored = queue.complete(
            session,
            claim,
            report=json.dumps(report.to_dict()),
            score=report.score,
            max_score=report.max_score,
            sandbox_image=report.sandbox.get("image"),
        )
        if stored:
            announce_graded(session, claim.submission_id)
    GRADINGS.labels(outcome="graded" if stored else "lost").inc()
    if stored:
        GRADING_SECONDS.observe(time.monotonic() - started)
        log.info(
            "graded submission %s, attempt %d: %g/%g",
            claim.submission_id,
            claim.attempt,
            report.score,
            report.max_score,
        )
    else:
        log.warning(
            "submission %s, attempt %d: the lease was lost, the grade not stored",
            claim.submission_id,
            claim.attempt,
        )
    return claim


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"


def run_workers(settings: Settings, *, concurrency: int, stop: threading.Event, grader: Grader) -> None:
    """`concurrency` workers on threads, and the webhook delivery loop, until `stop` is set: each finishes
    the grading (or delivery) it is in first (a job it cannot finish in time goes back to the queue when
    its lease expires)."""
    url = settings.resolved_database_url()
    upgrade(url)
    # Each grading's thread (its progress recorder's while it grades) and its heartbeat's.
    engine = make_engine(url, connections=2 * concurrency)
    sessions = session_factory(engine)
    store = FileStore(settings.resolved_files_dir())
    timing = Timing.of(settings)

    def work() -> None:
        while not stop.is_set():
            try:
                claimed = grade_one(sessions, store, grader, worker=worker_name(), timing=timing)
            except Exception:  # the database busy or away: a worker outlives it, and its job comes back
                log.exception("a grading step failed; trying again in %g s", timing.poll)
                claimed = None
            if claimed is None:
                stop.wait(timing.poll)

    threads = [threading.Thread(target=work, name=f"worker-{n}") for n in range(concurrency)]
    threads.append(threading.Thread(target=run_deliveries, args=(sessions, settings, stop), name="webhooks"))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
