"""The worker on both databases: a submission is graded through the Grader with its run's seed and the
grade is stored once, the checks that have run recorded while it runs; a damaged stored file or an
unavailable sandbox fails the run and awards nothing; a worker that lost its lease records nothing."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from grader import EXAMPLE_SUBMISSION
from grader.core import Grader
from grader.engine.executor import SandboxUnavailable
from grader.engine.report import Report
from grader.intake.uploads import load_submission
from grader.service.db import utcnow
from grader.service.grading import queue, worker
from grader.service.grading.live import LiveStatus, catalog_outline, live_status
from grader.service.grading.models import GradingJob, GradingRun, JobStatus, RunStatus
from grader.service.grading.worker import Heartbeat, Timing, grade_one
from grader.service.metrics import REGISTRY
from grader.service.submissions.models import Submission, SubmissionFile
from grader.service.submissions.storage import FileStore
from grader.service.webhooks.models import Webhook, WebhookDelivery
from grader.settings import Settings
from tests.grader.service.factories import students_submissions

TIMING = Timing.of(Settings())


@pytest.fixture(scope="module")
def grader() -> Iterator[Grader]:
    with Grader(Settings(), sandbox="process") as grader:
        yield grader


def submitted(sessions: sessionmaker[Session], store: FileStore) -> str:
    with sessions.begin() as session:
        (made,) = students_submissions(session, store, load_submission(EXAMPLE_SUBMISSION))
        return made


def sample(name: str, **labels: str) -> float:
    """A metric's value in this process now (0 before its first count)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def only_run(sessions: sessionmaker[Session]) -> tuple[GradingRun, GradingJob]:
    with sessions() as session:
        (run,) = session.scalars(select(GradingRun))
        (job,) = session.scalars(select(GradingJob))
        return run, job


def test_a_submission_is_graded_with_its_runs_seed_and_stored_once(
    sessions: sessionmaker[Session], tmp_path: Path, grader: Grader
) -> None:
    store = FileStore(tmp_path / "files")
    submitted(sessions, store)
    graded, timed = sample("grader_gradings_total", outcome="graded"), sample("grader_grading_seconds_count")

    claim = grade_one(sessions, store, grader, worker="w1", timing=TIMING)

    assert sample("grader_gradings_total", outcome="graded") == graded + 1
    assert sample("grader_grading_seconds_count") == timed + 1
    assert claim is not None and grade_one(sessions, store, grader, worker="w1", timing=TIMING) is None
    run, job = only_run(sessions)
    assert (run.status, job.status, run.score, run.max_score) == (RunStatus.graded, JobStatus.done, 86, 86)
    report = json.loads(run.report or "")
    upload = load_submission(EXAMPLE_SUBMISSION)
    expected: Report = grader.grade(upload.files, "cs231n-a2-fc", seed=claim.seed, origins=upload.origins)
    assert report == json.loads(json.dumps(expected.to_dict()))
    assert report["seed"] == run.seed == claim.seed


def test_a_damaged_stored_file_fails_the_run_and_awards_nothing(
    sessions: sessionmaker[Session], tmp_path: Path, grader: Grader
) -> None:
    store = FileStore(tmp_path / "files")
    submitted(sessions, store)
    with sessions() as session:
        layers = session.scalars(select(SubmissionFile).where(SubmissionFile.name == "layers.py")).one()
    store.path(layers.sha256).write_bytes(b"# tampered\n")

    grade_one(sessions, store, grader, worker="w1", timing=TIMING)

    run, job = only_run(sessions)
    assert (run.status, run.score, job.status) == (RunStatus.failed, None, JobStatus.queued)
    assert run.error is not None and "damaged" in run.error


class UnavailableSandbox(Grader):
    """Docker is outside our control: a sandbox that cannot run, as SandboxUnavailable reports it."""

    def __init__(self) -> None:
        pass

    def grade(self, *args: object, **kwargs: object) -> Report:
        raise SandboxUnavailable("cannot reach Docker")


def test_an_unavailable_sandbox_fails_the_run_and_awards_nothing(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    store = FileStore(tmp_path / "files")
    submitted(sessions, store)
    failed = sample("grader_gradings_total", outcome="failed")

    grade_one(sessions, store, UnavailableSandbox(), worker="w1", timing=TIMING)

    assert sample("grader_gradings_total", outcome="failed") == failed + 1

    run, job = only_run(sessions)
    assert (run.status, run.score, run.report, job.status) == (RunStatus.failed, None, None, JobStatus.queued)
    assert run.error == "SandboxUnavailable: cannot reach Docker"


def test_the_heartbeat_thread_keeps_extending_the_lease(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    import time

    from grader.service.grading import queue
    from grader.service.grading.worker import Heartbeat

    submitted(sessions, FileStore(tmp_path / "files"))
    with sessions.begin() as session:
        claim = queue.claim(session, worker="w1", lease=timedelta(seconds=1))
    assert claim is not None
    with sessions() as session:
        first = session.get(GradingJob, claim.job_id).lease_expires_at  # type: ignore[union-attr]

    with Heartbeat(sessions, claim, 0.05, timedelta(seconds=1)) as beating:
        time.sleep(0.3)

    with sessions() as session:
        later = session.get(GradingJob, claim.job_id).lease_expires_at  # type: ignore[union-attr]
    assert first is not None and later is not None and later > first and not beating.lost


class FlakySessions:
    """Sessions whose first `failures` transactions fail as a busy SQLite does."""

    def __init__(self, sessions: sessionmaker[Session], failures: int) -> None:
        self.sessions, self.failures = sessions, failures

    def begin(self) -> Any:
        if self.failures:
            self.failures -= 1
            raise OperationalError("BEGIN", {}, Exception("database is locked"))
        return self.sessions.begin()

    def __call__(self) -> Session:
        return self.sessions()


def test_a_heartbeat_that_fails_once_goes_on_beating(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    submitted(sessions, FileStore(tmp_path / "files"))
    with sessions.begin() as session:
        claim = queue.claim(session, worker="w1", lease=timedelta(seconds=5))
    assert claim is not None
    flaky = FlakySessions(sessions, failures=2)
    with Heartbeat(flaky, claim, 0.05, timedelta(seconds=5)) as beating:  # type: ignore[arg-type]
        time.sleep(0.5)
        assert beating.thread.is_alive()
    assert flaky.failures == 0 and not beating.lost
    assert only_run(sessions)[0].heartbeat_at > only_run(sessions)[0].started_at  # type: ignore[operator]


def test_a_worker_outlives_a_failing_database_step_and_grades_the_job(
    sessions: sessionmaker[Session],
    database_url: str,
    tmp_path: Path,
    grader: Grader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    submitted(sessions, FileStore(tmp_path / "files"))
    real, calls = worker.grade_one, []

    def failing_first(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("UPDATE grading_jobs", {}, Exception("database is locked"))
        return real(*args, **kwargs)

    monkeypatch.setattr(worker, "grade_one", failing_first)
    settings = Settings(data_dir=tmp_path, database_url=database_url, worker_poll_seconds=0.05)
    stop = threading.Event()
    thread = threading.Thread(
        target=worker.run_workers, args=(settings,), kwargs={"concurrency": 1, "stop": stop, "grader": grader}
    )
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while only_run_or_none(sessions) != RunStatus.graded:
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert len(calls) >= 2


def only_run_or_none(sessions: sessionmaker[Session]) -> RunStatus | None:
    with sessions() as session:
        run = session.scalars(select(GradingRun)).first()
        return run.status if run is not None else None


def test_a_stored_grade_is_announced_to_the_assignments_webhooks_in_its_transaction(
    sessions: sessionmaker[Session], tmp_path: Path, grader: Grader
) -> None:
    store = FileStore(tmp_path / "files")
    submission_id = submitted(sessions, store)
    with sessions.begin() as session:
        made = session.get(Submission, submission_id)
        assert made is not None
        session.add(
            Webhook(
                assignment_id=made.assignment_id,
                url="https://lms.example.org/hook",
                secret="s",
                created_by="t",
            )
        )

    grade_one(sessions, store, grader, worker="w1", timing=TIMING)

    with sessions() as session:
        (delivery,) = session.scalars(select(WebhookDelivery))
    body = json.loads(delivery.body)
    assert (body["event"], body["submission_id"], body["final_score"]) == ("grade.updated", submission_id, 86)
    assert body["delivery_id"] == delivery.id and delivery.status == "pending"


class Observing(Grader):
    """The real grader, calling `look` from inside its checks_progress callback (the grading waits for
    it): what a live page sees while the grading runs."""

    def __init__(self, real: Grader, look: Callable[[tuple[str, ...]], None]) -> None:
        self.real, self.look = real, look

    def grade(self, files: Mapping[str, bytes], assignment: str, **kwargs: Any) -> Report:
        record = kwargs.pop("checks_progress")

        def heard(checks: tuple[str, ...], finished: int, total: int) -> None:
            record(checks, finished, total)
            self.look(checks)

        return self.real.grade(files, assignment, checks_progress=heard, **kwargs)


def spy_on_progress(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, bool]]:
    """Every progress the worker writes: when, and whether it was stored."""
    real, written = queue.record_progress, []

    def record(*args: Any, **kwargs: Any) -> bool:
        stored = real(*args, **kwargs)
        written.append((time.monotonic(), stored))
        return stored

    monkeypatch.setattr(queue, "record_progress", record)
    return written


def test_the_checks_that_have_run_are_recorded_while_a_real_grading_runs(
    sessions: sessionmaker[Session], tmp_path: Path, grader: Grader, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStore(tmp_path / "files")
    submission_id = submitted(sessions, store)
    every_check = {check.id for check in catalog_outline("cs231n-a2-fc")[1]}
    seen: list[tuple[tuple[str, ...], GradingRun, LiveStatus]] = []

    def look(checks: tuple[str, ...]) -> None:
        if seen or not 0 < len(checks) < len(every_check):
            return
        deadline = time.monotonic() + 10  # the recorder writes within its interval (0.5 s)
        while time.monotonic() < deadline:
            with sessions() as session:
                (run,) = session.scalars(select(GradingRun))
                if run.progress is not None and set(json.loads(run.progress)["checks"]) == set(checks):
                    made = session.get(Submission, submission_id)
                    assert made is not None
                    seen.append((checks, run, live_status(session, made, as_staff=True)))
                    return
            time.sleep(0.02)
        raise AssertionError("the progress was not recorded while the grading ran")

    written = spy_on_progress(monkeypatch)
    started = time.monotonic()
    claim = grade_one(sessions, store, Observing(grader, look), worker="w1", timing=TIMING)
    took = time.monotonic() - started

    assert claim is not None and seen
    checks, during, status = seen[0]
    assert during.status == RunStatus.running and status.status == "running" and status.queue_position is None
    assert sum(q.done for q in status.questions) == len(checks)
    assert sum(q.total for q in status.questions) == len(every_check)
    assert {c.id for q in status.questions for c in q.checks if c.done} == set(checks)
    run, job = only_run(sessions)
    assert (run.status, job.status, run.score) == (RunStatus.graded, JobStatus.done, 86)
    final = json.loads(run.progress or "")  # the last state is written before the grade
    assert set(final["checks"]) == every_check and final["probes"][0] == final["probes"][1] > 0
    assert all(stored for _, stored in written)
    assert len(written) <= 2 + took / TIMING.progress  # throttled: one write an interval at most
    assert all(b - a >= TIMING.progress * 0.9 for (a, _), (b, _) in itertools.pairwise(written[:-1]))


def test_a_worker_that_lost_its_lease_records_no_progress(
    sessions: sessionmaker[Session], tmp_path: Path, grader: Grader, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStore(tmp_path / "files")
    submitted(sessions, store)
    taken: list[queue.Claim] = []

    class Stalled(Grader):
        """Stalls past its lease before grading (another worker takes the job), then grades."""

        def __init__(self) -> None:
            pass

        def grade(self, files: Mapping[str, bytes], assignment: str, **kwargs: Any) -> Report:
            with sessions.begin() as session:
                session.execute(update(GradingJob).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
            with sessions.begin() as session:
                other = queue.claim(session, worker="w2", lease=timedelta(seconds=60))
            assert other is not None
            taken.append(other)
            return grader.grade(files, assignment, **kwargs)

    written = spy_on_progress(monkeypatch)
    grade_one(sessions, store, Stalled(), worker="w1", timing=TIMING)

    assert [stored for _, stored in written] == [False]  # refused once, and never tried again
    with sessions() as session:
        stale, current = session.scalars(select(GradingRun).order_by(GradingRun.attempt))
    assert (stale.worker, stale.status, stale.progress) == ("w1", RunStatus.abandoned, None)
    assert (current.worker, current.status, current.progress) == ("w2", RunStatus.running, None)
    assert taken[0].run_id == current.id
