"""`make bench`, third part: how long an assignment's dashboard takes to render for a big course.

A temporary SQLite database holds a course of 500 students (the number is an option), each with one or
two graded submissions whose reports are the grader's own (the golden corpus, tests/fixtures/golden:
correct, buggy and broken uploads in turn), plus a queue with waiting, running and failed jobs. We render
/assignments/{id}/dashboard through TestClient as its instructor and report the median time, its
ratio to a floor measured in the same run (the home page of the same instructor through the same
stack: the session, the CSP middleware, a template) and to GET /healthz, and the number of queries;
then the same with the reports' summaries dropped before each render (a process's first view of them:
see dashboard_data.SummaryCache). The issue's target is a median under 300 ms. Timings are reported,
never asserted.
"""

from __future__ import annotations

import gzip
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from fastapi.testclient import TestClient
from rich.console import Console
from rich.table import Table
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from grader.service.accounts.models import User
from grader.service.accounts.tokens import issue_access_token
from grader.service.app import create_app
from grader.service.assignments.models import Assignment
from grader.service.courses.models import Course, Membership, Role
from grader.service.grading.models import GradingJob, GradingRun, JobStatus, RunStatus
from grader.service.submissions.models import Source, Submission
from grader.service.web.browser import SESSION_COOKIE
from grader.service.web.dashboard_data import SUMMARIES
from grader.settings import Settings

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "golden" / "reports.json.gz"
SECRET = "a-benchmark-secret-of-more-than-32-characters"
TARGET_MS = 300.0


def golden_reports() -> list[dict[str, Any]]:
    with gzip.open(GOLDEN) as file:
        reports: dict[str, dict[str, Any]] = json.load(file)
    return [reports[name] for name in sorted(reports) if reports[name]["assignment"] == "cs231n-a2-fc"]


def populate(session: Session, students: int) -> tuple[str, str]:
    """A course with its instructor and an assignment graded for `students` students: (instructor id,
    assignment id)."""
    reports = [(report, json.dumps(report)) for report in golden_reports()]
    course = Course(slug="cs231n-bench", title="CS231n (benchmark)")
    instructor = User(email="instructor@example.org", email_key="instructor@example.org", name="Instructor")
    session.add_all([course, instructor])
    session.flush()
    session.add(Membership(course_id=course.id, user_id=instructor.id, role=Role.instructor))
    assignment = Assignment(
        course_id=course.id,
        slug="a2",
        title="Assignment 2",
        catalog="cs231n-a2-fc",
        due_at=datetime(2099, 1, 1, tzinfo=UTC),
    )
    session.add(assignment)
    session.flush()
    now = datetime.now(UTC)
    for number in range(students):
        email = f"student{number:04d}@example.org"
        user = User(email=email, email_key=email, name=f"Student {number:04d}")
        session.add(user)
        session.flush()
        session.add(
            Membership(
                course_id=course.id, user_id=user.id, role=Role.student, section=f"Section {number % 8}"
            )
        )
        for attempt in range(1 + number % 2):  # half the students handed in twice
            report, text = reports[(number + attempt * 7) % len(reports)]
            submission = Submission(
                assignment_id=assignment.id,
                student_id=user.id,
                submitted_by_id=user.id,
                caller=f"user:{user.id}",
                source=Source.api,
                created_at=now - timedelta(hours=2 - attempt),
            )
            session.add(submission)
            session.flush()
            job = GradingJob(submission_id=submission.id, status=JobStatus.done, attempts=1)
            session.add(job)
            session.flush()
            seconds = 3.0 + (number * 37 % 100) / 10
            session.add(
                GradingRun(
                    job_id=job.id,
                    submission_id=submission.id,
                    attempt=1,
                    status=RunStatus.graded,
                    worker="bench",
                    seed=report["seed"],
                    grader_version="bench",
                    started_at=now - timedelta(seconds=seconds),
                    finished_at=now - timedelta(hours=1 - attempt),
                    seconds=seconds,
                    score=report["score"],
                    max_score=report["max_score"],
                    report=text,
                )
            )
            if number % 50 == 0:  # the queue is never empty at a deadline
                status = (JobStatus.queued, JobStatus.running, JobStatus.failed)[number // 50 % 3]
                session.add(
                    GradingJob(submission_id=submission.id, status=status, attempts=3 * (status == "failed"))
                )
    session.flush()
    return instructor.id, assignment.id


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def median_seconds(client: TestClient, path: str, runs: int, *, cold: bool = False) -> float:
    """The median time of GET `path`; `cold`: each time with no report summarized yet."""
    times = []
    for _ in range(runs):
        if cold:
            SUMMARIES.clear()
        start = time.perf_counter()
        answer = client.get(path)
        times.append(time.perf_counter() - start)
        if answer.status_code != 200:
            raise SystemExit(f"GET {path} answered {answer.status_code}: {answer.text[:300]}")
    return statistics.median(times)


def main(
    students: int = typer.Option(500, min=1, help="students in the course"),
    runs: int = typer.Option(20, min=3, help="renders per measurement"),
) -> None:
    console = Console(width=140)
    with tempfile.TemporaryDirectory(prefix="grader-dashboard-bench-") as folder:
        settings = Settings(
            data_dir=Path(folder) / "data",
            database_url=f"sqlite:///{folder}/grader.db",
            secret_key=SECRET,
            sandbox="process",
        )
        app = create_app(settings)
        with TestClient(app) as client:
            started = time.perf_counter()
            with app.state.sessions.begin() as session:
                instructor_id, assignment_id = populate(session, students)
            console.print(f"{students} students graded in {time.perf_counter() - started:.1f} s (setup)")
            token = issue_access_token(instructor_id, secret=SECRET, lifetime=timedelta(hours=1))
            client.cookies.set(SESSION_COOKIE, token)
            dashboard = f"/assignments/{assignment_id}/dashboard"
            for path in (dashboard, "/", "/healthz"):  # warm: templates compiled, connections open
                median_seconds(client, path, 3)
            with counted(app.state.sessions.kw["bind"]) as statements:
                size = len(client.get(dashboard).content)
            home = median_seconds(client, "/", runs)
            health = median_seconds(client, "/healthz", runs)
            board = median_seconds(client, dashboard, runs)
            cold = median_seconds(client, dashboard, runs, cold=True)
    table = Table(title=f"the dashboard of a {students}-student assignment (SQLite), median of {runs}")
    for column in ("measure", "median (ms)", "ratio to the home page", "ratio to /healthz"):
        table.add_column(column)
    for name, seconds in (
        ("GET /healthz", health),
        ("GET / (home page, the floor)", home),
        (f"GET {dashboard.replace(assignment_id, '{id}')}", board),
        ("the same, every report parsed again (a new process)", cold),
    ):
        table.add_row(name, f"{seconds * 1000:.1f}", f"{seconds / home:.2f}", f"{seconds / health:.2f}")
    console.print(table)
    verdict = "under" if board * 1000 < TARGET_MS else "OVER"
    console.print(
        f"dashboard: {board * 1000:.0f} ms, {verdict} the {TARGET_MS:.0f} ms target ({cold * 1000:.0f} ms "
        "while its reports are read for the first time); "
        f"{len(statements)} queries; {size / 1024:.0f} KiB of HTML"
    )


if __name__ == "__main__":
    typer.run(main)
