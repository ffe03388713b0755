"""Test data for the service's database: a course with an assignment and a student, and submissions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from grader.intake.uploads import Submission as Upload
from grader.service.accounts.models import User
from grader.service.assignments.models import Assignment
from grader.service.courses.models import Course, Membership, Role
from grader.service.db import new_id
from grader.service.grading.models import GradingJob, GradingRun, JobStatus, RunStatus
from grader.service.submissions.models import Source, Submission
from grader.service.submissions.service import submit
from grader.service.submissions.storage import FileStore


def course_with_student(session: Session) -> tuple[Assignment, User]:
    course = Course(slug=f"c{new_id()[:8]}", title="CS231n")
    student = User(email=f"{new_id()[:8]}@example.org", email_key="", name="A Student")
    student.email_key = student.email
    session.add_all([course, student])
    session.flush()
    session.add(Membership(course_id=course.id, user_id=student.id, role=Role.student))
    assignment = Assignment(
        course_id=course.id,
        slug="a2",
        title="Assignment 2",
        catalog="cs231n-a2-fc",
        due_at=datetime(2099, 1, 1, tzinfo=UTC),  # far ahead: the default late policy refuses late work
    )
    session.add(assignment)
    session.flush()
    return assignment, student


def submission(session: Session, assignment: Assignment, student: User) -> Submission:
    made = Submission(
        assignment_id=assignment.id,
        student_id=student.id,
        submitted_by_id=student.id,
        caller=f"user:{student.id}",
        source=Source.api,
    )
    session.add(made)
    session.flush()
    return made


def students_submissions(session: Session, store: FileStore, upload: Upload, count: int = 1) -> list[str]:
    """A new course's student hands in `upload` `count` times through the API: the submissions' ids."""
    assignment, student = course_with_student(session)
    return [
        submit(
            session,
            store,
            assignment=assignment,
            student_id=student.id,
            upload=upload,
            caller=f"user:{student.id}",
            submitted_by_id=student.id,
            source=Source.api,
        )[0].id
        for _ in range(count)
    ]


def graded_run(
    session: Session, submission_id: str, report: dict[str, Any], *, finished_at: datetime, seconds: float
) -> GradingRun:
    """The submission's job, done at the first attempt, and the graded run that stored `report` (its
    score, maximum and seed as well)."""
    job = GradingJob(submission_id=submission_id, status=JobStatus.done, attempts=1)
    session.add(job)
    session.flush()
    run = GradingRun(
        job_id=job.id,
        submission_id=submission_id,
        attempt=1,
        status=RunStatus.graded,
        worker="test",
        seed=report.get("seed", 1),
        grader_version="test",
        started_at=finished_at - timedelta(seconds=seconds),
        finished_at=finished_at,
        seconds=seconds,
        score=report["score"],
        max_score=report["max_score"],
        report=json.dumps(report),
    )
    session.add(run)
    session.flush()
    return run
