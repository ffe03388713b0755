"""`grader worker` as real processes on both databases: a worker killed mid-grade loses its job to
another, which grades it exactly once; SIGTERM lets the grading in progress finish before the exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grader.intake.uploads import load_submission
from grader.service.grading.models import GradingJob, GradingRun, JobStatus, RunStatus
from grader.service.submissions.storage import FileStore
from tests.fixtures.submissions import buggy
from tests.grader.service.factories import students_submissions

pytestmark = pytest.mark.slow(reason="waits for gradings that hang until their time limit, and for leases")


def slow_submission(sessions: sessionmaker[Session], data_dir: Path) -> None:
    """A submission whose grading takes several seconds: one update rule loops until its time limit."""
    upload = load_submission(buggy.materialize("loop_in_function", data_dir / "uploads"))
    with sessions.begin() as session:
        students_submissions(session, FileStore(data_dir / "files"), upload)


def start_worker(
    database_url: str, data_dir: Path, lease: float = 30.0, *, own_dir: Path | None = None
) -> subprocess.Popen[bytes]:
    """A `grader worker` process; its lease is long (a loaded machine may delay a heartbeat by seconds)
    unless the test waits for it to expire. `own_dir`: a data directory of its own, as on another
    machine, with only the submissions' files shared (GRADER_FILES_DIR, a network volume there)."""
    env = {
        **os.environ,
        "GRADER_DATABASE_URL": database_url,
        "GRADER_DATA_DIR": str(own_dir or data_dir),
        "GRADER_FILES_DIR": str(data_dir / "files"),
        "GRADER_SANDBOX": "process",
        "GRADER_WORKER_LEASE_SECONDS": str(lease),
        "GRADER_WORKER_HEARTBEAT_SECONDS": "0.5",
        "GRADER_WORKER_POLL_SECONDS": "0.2",
    }
    command = [sys.executable, "-m", "grader.cli", "worker", "--concurrency", "1"]
    return subprocess.Popen(command, env=env, stderr=subprocess.PIPE, start_new_session=True)


def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def runs(sessions: sessionmaker[Session]) -> list[GradingRun]:
    with sessions() as session:
        return list(session.scalars(select(GradingRun).order_by(GradingRun.attempt)))


def job_status(sessions: sessionmaker[Session]) -> JobStatus:
    with sessions() as session:
        return session.scalars(select(GradingJob)).one().status


def test_a_worker_killed_mid_grade_loses_the_job_to_another_which_grades_it_once(
    sessions: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    slow_submission(sessions, tmp_path)
    doomed = start_worker(database_url, tmp_path, lease=3.0)  # the survivor waits for it to expire
    try:
        wait_for(lambda: any(run.status == RunStatus.running for run in runs(sessions)), 60)
        time.sleep(1.0)
    finally:
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait()
    survivor = start_worker(database_url, tmp_path, own_dir=tmp_path / "other-host")
    try:
        wait_for(lambda: job_status(sessions) == JobStatus.done, 90)
    finally:
        survivor.send_signal(signal.SIGTERM)
        survivor.wait(timeout=60)

    graded = [(run.attempt, run.status) for run in runs(sessions)]
    assert graded == [(1, RunStatus.abandoned), (2, RunStatus.graded)]
    assert runs(sessions)[1].score is not None and runs(sessions)[0].score is None


def test_sigterm_lets_the_grading_in_progress_finish_then_exits(
    sessions: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    slow_submission(sessions, tmp_path)
    worker = start_worker(database_url, tmp_path)
    try:
        wait_for(lambda: any(run.status == RunStatus.running for run in runs(sessions)), 60)
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=90)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)

    assert worker.returncode == 0, stderr.decode()
    assert b"no grading in progress" in stderr
    assert [run.status for run in runs(sessions)] == [RunStatus.graded]
    assert job_status(sessions) == JobStatus.done


def test_two_worker_processes_on_one_queue_grade_every_submission_once(
    sessions: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    with sessions.begin() as session:
        students_submissions(
            session, FileStore(tmp_path / "files"), load_submission(buggy.CORRECT_COURSE), 50
        )
    workers = [start_worker(database_url, tmp_path, own_dir=tmp_path / f"host{n}") for n in range(2)]
    try:
        wait_for(lambda: sum(run.status == RunStatus.graded for run in runs(sessions)) == 50, 240)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)

    graded = runs(sessions)
    assert len(graded) == 50 and {run.status for run in graded} == {RunStatus.graded}
    assert len({run.submission_id for run in graded}) == 50  # none graded twice
    assert len({run.worker.split(":")[1] for run in graded}) == 2  # both processes took their share
    assert {run.score for run in graded} == {86.0}
