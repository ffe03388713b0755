"""`grader serve` as a real process with the Docker sandbox, on both databases: submissions through the
HTTP API are graded; stopped by SIGTERM with jobs queued, it finishes the grading in progress, exits, and
when started again grades every job, each once; killed (SIGKILL) mid-grade, it is started again and the
submission is graded exactly once, its first run abandoned."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grader import EXAMPLE_SUBMISSION
from grader.service.accounts.models import User
from grader.service.accounts.service import create_api_token
from grader.service.assignments.models import Assignment
from grader.service.courses.models import Course, Membership, Role
from grader.service.grading.models import GradingRun, RunStatus
from tests.fixtures.submissions import buggy

pytestmark = pytest.mark.slow(reason="starts the service several times and grades in Docker")
SECRET = "a-test-secret-of-more-than-32-characters"
STUDENTS = 4


@dataclass
class Course231n:
    assignment: str
    token: str
    emails: list[str]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def course(sessions: sessionmaker[Session]) -> Course231n:
    with sessions.begin() as session:
        course = Course(slug="cs231n", title="CS231n")
        people = [
            User(email=f"s{n}@example.org", email_key=f"s{n}@example.org", name=f"S{n}")
            for n in range(STUDENTS)
        ]
        session.add_all([course, *people])
        session.flush()
        session.add_all(Membership(course_id=course.id, user_id=p.id, role=Role.student) for p in people)
        assignment = Assignment(
            course_id=course.id,
            slug="a2",
            title="A2",
            catalog="cs231n-a2-fc",
            due_at=datetime.now(UTC) + timedelta(days=1),
        )
        session.add(assignment)
        session.flush()
        _, token = create_api_token(
            session,
            course_id=course.id,
            name="LMS",
            scopes=["submissions:write", "submissions:read"],
            created_by_id=people[0].id,
        )
        return Course231n(assignment.id, token, [p.email for p in people])


class Service:
    """One `grader serve` process on a free port."""

    def __init__(self, database_url: str, data_dir: Path, sandbox_image: str, lease: float = 30.0) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "GRADER_DATABASE_URL": database_url,
            "GRADER_DATA_DIR": str(data_dir),
            "GRADER_SECRET_KEY": SECRET,
            "GRADER_SANDBOX_IMAGE": sandbox_image,
            "GRADER_WORKER_LEASE_SECONDS": str(lease),
            "GRADER_WORKER_HEARTBEAT_SECONDS": "0.5",
            "GRADER_WORKER_POLL_SECONDS": "0.2",
        }
        command = [sys.executable, "-m", "grader.cli", "serve", "--port", str(self.port), "--workers", "1"]
        self.log = data_dir.parent / f"serve-{self.port}.log"  # read at any time, unlike a pipe
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, env=env, stderr=log, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(self.healthy, 60, lambda: f"the service did not start: {self.stderr()}")

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the service exited: {self.stderr()}")
        try:
            return httpx2.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx2.TransportError:
            return False

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def submit(self, course: Course231n, student: str, folder: Path) -> str:
        files = [("files", (path.name, path.read_bytes())) for path in sorted(folder.glob("*.py"))]
        answer = httpx2.post(
            f"{self.url}/api/v1/assignments/{course.assignment}/submissions",
            headers={"Authorization": f"Bearer {course.token}"},
            data={"student": student},
            files=files,
            timeout=30,
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])

    def stop(self, sig: int = signal.SIGTERM) -> int:
        os.killpg(self.process.pid, sig) if sig == signal.SIGKILL else self.process.send_signal(sig)
        return self.process.wait(timeout=120)


def wait_for(
    condition: Callable[[], bool], seconds: float, why: Callable[[], str] = lambda: "timed out"
) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, why()
        time.sleep(0.2)


def runs(sessions: sessionmaker[Session]) -> list[GradingRun]:
    with sessions() as session:
        return list(session.scalars(select(GradingRun).order_by(GradingRun.started_at)))


def graded(sessions: sessionmaker[Session]) -> dict[str, list[GradingRun]]:
    done: dict[str, list[GradingRun]] = {}
    for run in runs(sessions):
        if run.status == RunStatus.graded:
            done.setdefault(run.submission_id, []).append(run)
    return done


@pytest.fixture
def services() -> Iterator[list[Service]]:
    """Every service a test starts, killed at its end if still running."""
    started: list[Service] = []
    yield started
    for service in started:
        if service.process.poll() is None:
            os.killpg(service.process.pid, signal.SIGKILL)
            service.process.wait()


def test_stopped_with_jobs_queued_and_started_again_it_grades_every_job_once(
    sessions: sessionmaker[Session],
    database_url: str,
    tmp_path: Path,
    sandbox_image: str,
    course: Course231n,
    services: list[Service],
) -> None:
    slow = buggy.materialize("loop_in_function", tmp_path / "uploads")  # seconds in a time limit
    first = Service(database_url, tmp_path / "data", sandbox_image)
    services.append(first)
    ids = [first.submit(course, course.emails[0], slow)]
    ids += [first.submit(course, email, EXAMPLE_SUBMISSION) for email in course.emails]
    wait_for(lambda: any(run.status == RunStatus.running for run in runs(sessions)), 120, first.stderr)
    assert first.stop(signal.SIGTERM) == 0, first.stderr()
    assert "no grading in progress" in first.stderr()
    assert not any(run.status in (RunStatus.running, RunStatus.abandoned) for run in runs(sessions))
    assert len(graded(sessions)) < len(ids), "the test needs jobs still queued when the service stops"

    second = Service(database_url, tmp_path / "data", sandbox_image)
    services.append(second)
    wait_for(lambda: len(graded(sessions)) == len(ids), 240, second.stderr)
    assert second.stop() == 0
    done = graded(sessions)
    assert sorted(done) == sorted(ids) and all(len(each) == 1 for each in done.values())
    assert [run.status for run in runs(sessions)] == [RunStatus.graded] * len(ids)
    full = [done[i][0] for i in ids[1:]]
    assert all(run.score == run.max_score for run in full)
    assert done[ids[0]][0].score < done[ids[0]][0].max_score  # the slow one is wrong, and graded so


def test_killed_mid_grade_and_started_again_it_grades_the_submission_exactly_once(
    sessions: sessionmaker[Session],
    database_url: str,
    tmp_path: Path,
    sandbox_image: str,
    course: Course231n,
    services: list[Service],
) -> None:
    slow = buggy.materialize("loop_in_function", tmp_path / "uploads")
    doomed = Service(database_url, tmp_path / "data", sandbox_image, lease=3.0)
    services.append(doomed)
    submission = doomed.submit(course, course.emails[0], slow)
    wait_for(lambda: any(run.status == RunStatus.running for run in runs(sessions)), 120, doomed.stderr)
    time.sleep(1.0)
    doomed.stop(signal.SIGKILL)

    again = Service(database_url, tmp_path / "data", sandbox_image)  # takes the job when 3 s have passed
    services.append(again)
    wait_for(lambda: submission in graded(sessions), 120, again.stderr)
    assert again.stop() == 0
    assert [(run.attempt, run.status) for run in runs(sessions)] == [
        (1, RunStatus.abandoned),
        (2, RunStatus.graded),
    ]
    assert runs(sessions)[0].score is None
