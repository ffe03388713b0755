"""Submissions as the API shows them: their status (from their jobs) and the score of their latest graded
run, for staff as stored and for a student as their assignment lets them see it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from grader.service.accounts.models import User
from grader.service.assignments.models import Assignment
from grader.service.db import utcnow
from grader.service.errors import Conflict
from grader.service.grading.models import GradingJob, GradingRun, JobStatus, RunStatus
from grader.service.submissions.feedback import shows_hidden, students_report
from grader.service.submissions.models import Submission
from grader.service.submissions.schemas import Student, SubmissionOut, SubmissionStatus


def status_of(jobs: Sequence[JobStatus], graded: bool) -> SubmissionStatus:
    """Grading in progress first (a regrade included), then the grade, then a failure for good."""
    if JobStatus.running in jobs:
        return "running"
    if JobStatus.queued in jobs:
        return "queued"
    return "graded" if graded else "failed"


def latest_graded_runs(
    session: Session, submission_ids: Sequence[str], *, with_reports: bool = True
) -> dict[str, GradingRun]:
    """Each submission's latest graded run; `with_reports` False leaves the reports unread until used
    (a course's grades need only the scores)."""
    query = (
        select(GradingRun)
        .where(GradingRun.submission_id.in_(submission_ids), GradingRun.status == RunStatus.graded)
        .order_by(GradingRun.finished_at)
    )
    if not with_reports:
        query = query.options(defer(GradingRun.report))
    runs = session.scalars(query)
    return {run.submission_id: run for run in runs}  # the last one of each wins


def describe(
    session: Session,
    submissions: Sequence[Submission],
    assignment: Assignment,
    *,
    as_staff: bool,
    with_scores: bool = True,
) -> list[SubmissionOut]:
    """`with_scores` False: scores left out (an API token without grades:read)."""
    ids = [submission.id for submission in submissions]
    jobs: dict[str, list[JobStatus]] = {}
    for submission_id, job_status in session.execute(
        select(GradingJob.submission_id, GradingJob.status).where(GradingJob.submission_id.in_(ids))
    ):
        jobs.setdefault(submission_id, []).append(job_status)
    runs = latest_graded_runs(session, ids)
    students = {
        user.id: user
        for user in session.scalars(select(User).where(User.id.in_({s.student_id for s in submissions})))
    }
    now = utcnow()
    shows: dict[str, bool] = {}
    described = []
    for submission in submissions:
        run = runs.get(submission.id)
        score, max_score = (run.score, run.max_score) if run is not None else (None, None)
        if not with_scores:
            score = max_score = None
        elif run is not None and not as_staff:
            student_id = submission.student_id
            if student_id not in shows:  # one due date read per student, not per submission
                shows[student_id] = shows_hidden(session, assignment, student_id, now)
            seen = students_report(json.loads(run.report or "{}"), show_hidden=shows[student_id])
            score, max_score = seen["score"], seen["max_score"]
        student = students[submission.student_id]
        described.append(
            SubmissionOut(
                id=submission.id,
                assignment_id=submission.assignment_id,
                student=Student(email=student.email, name=student.name),
                status=status_of(jobs.get(submission.id, []), run is not None),
                score=score,
                max_score=max_score,
                late=submission.late,
                created_at=submission.created_at,
                graded_at=run.finished_at if run is not None else None,
            )
        )
    return described


def report_for(
    session: Session,
    run: GradingRun,
    assignment: Assignment,
    student_id: str,
    *,
    as_staff: bool,
    now: datetime | None = None,
) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(run.report or "{}")
    if as_staff:
        return report
    show = shows_hidden(session, assignment, student_id, now or utcnow())
    return students_report(report, show_hidden=show)


def latest_report(session: Session, submission: Submission, assignment: Assignment, *, as_staff: bool) -> Any:
    """The report of the submission's latest graded run; Conflict until there is one."""
    run = latest_graded_runs(session, [submission.id]).get(submission.id)
    if run is None:
        (status,) = describe(session, [submission], assignment, as_staff=as_staff)
        if status.status == "failed":
            raise Conflict(
                "not graded: the grader failed three times for reasons of its own (not of the code); "
                "the course's staff see it in the submissions list"
            )
        raise Conflict(f"not graded yet: the submission is {status.status}; try again shortly")
    return report_for(session, run, assignment, submission.student_id, as_staff=as_staff)
