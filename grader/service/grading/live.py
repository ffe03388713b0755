"""A submission's grading as it happens, for the live submission page (JSON, or server-sent events):
queued with its place in the queue, running with the checks that have run question by question, then
graded with its score (or failed for good).

A student sees hidden checks by name only as their assignment allows (submissions/feedback.py): the
others count in their question's totals (the work the grading does), nameless. A check "has run" when
its probes have: verdicts come with the report, at the end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.assignments import UnknownAssignment, get_assignment
from grader.engine.checks import Visibility
from grader.service.assignments.models import Assignment
from grader.service.db import utcnow
from grader.service.grading import queue
from grader.service.grading.models import GradingJob, GradingRun, JobStatus, RunStatus
from grader.service.submissions.feedback import shows_hidden
from grader.service.submissions.models import Submission
from grader.service.submissions.schemas import SubmissionStatus
from grader.service.submissions.views import latest_graded_runs, report_for, status_of


@dataclass(frozen=True)
class CheckOutline:
    """A check of the catalog as the live page names it (nothing of its inputs or points)."""

    id: str
    target: str
    question: str
    summary: str
    visibility: Visibility


@dataclass(frozen=True)
class CheckProgress:
    id: str
    target: str
    summary: str
    visibility: Visibility
    done: bool  # its probes have run


@dataclass(frozen=True)
class QuestionProgress:
    name: str
    done: int  # checks of the question that have run, hidden ones included
    total: int  # checks of the question, hidden ones included
    checks: tuple[CheckProgress, ...]  # those the caller may see by name, in the catalog's order

    def to_dict(self) -> dict[str, Any]:
        checks = [
            {"id": c.id, "target": c.target, "summary": c.summary, "visibility": c.visibility, "done": c.done}
            for c in self.checks
        ]
        return {"name": self.name, "done": self.done, "total": self.total, "checks": checks}


@dataclass(frozen=True)
class LiveStatus:
    submission_id: str
    status: SubmissionStatus  # as the submissions list says it (views.status_of)
    queue_position: int | None  # queued: 1 = the next job a worker claims
    started_at: datetime | None  # running: when its run started
    probes_done: int | None  # running: the sandbox's probes finished so far (None before the first)
    probes_total: int | None
    questions: tuple[QuestionProgress, ...]  # running: the checks that have run, by question
    score: float | None  # the latest graded run's (a regrade may be queued or running), as the caller sees it
    max_score: float | None
    graded_at: datetime | None

    @property
    def final(self) -> bool:
        """Nothing more will change without a new grading: a live page's stream may end."""
        return self.status in ("graded", "failed")

    def to_dict(self) -> dict[str, Any]:
        """The JSON (and server-sent event) payload."""
        return {
            "submission_id": self.submission_id,
            "status": self.status,
            "final": self.final,
            "queue_position": self.queue_position,
            "started_at": _iso(self.started_at),
            "probes": None
            if self.probes_total is None
            else {"done": self.probes_done, "total": self.probes_total},
            "checks": {
                "done": sum(question.done for question in self.questions),
                "total": sum(question.total for question in self.questions),
            }
            if self.questions
            else None,
            "questions": [question.to_dict() for question in self.questions],
            "score": self.score,
            "max_score": self.max_score,
            "graded_at": _iso(self.graded_at),
        }


def live_status(
    session: Session, submission: Submission, *, as_staff: bool, with_scores: bool = True
) -> LiveStatus:
    """The submission's grading now, for its student (`as_staff` False) or the course's staff; the caller
    has authorized them (submissions/access.py). `with_scores` False: no score (an API token without
    grades:read). A few queries, whatever the queue's length or the catalog's size."""
    assignment = session.get(Assignment, submission.assignment_id)
    assert assignment is not None
    now = utcnow()
    jobs = list(session.scalars(select(GradingJob).where(GradingJob.submission_id == submission.id)))
    graded = latest_graded_runs(session, [submission.id], with_reports=with_scores and not as_staff)
    run = graded.get(submission.id)
    status = status_of([job.status for job in jobs], run is not None)

    queue_position = None
    if status == "queued":
        waiting = [job for job in jobs if job.status == JobStatus.queued]
        first = min(waiting, key=lambda job: (job.priority, job.available_at, job.id))
        queue_position = 1 + queue.jobs_ahead(session, first, now=now)

    started_at, probes_done, probes_total = None, None, None
    questions: tuple[QuestionProgress, ...] = ()
    if status == "running":
        running = session.scalar(
            select(GradingRun)
            .where(GradingRun.submission_id == submission.id, GradingRun.status == RunStatus.running)
            .order_by(GradingRun.started_at.desc())
            .limit(1)
        )
        if running is not None:
            checks_run, probes_done, probes_total = _progress(running.progress)
            show = as_staff or shows_hidden(session, assignment, submission.student_id, now)
            questions = _by_question(assignment.catalog, checks_run, show_hidden=show)
            started_at = running.started_at

    score = max_score = None
    if run is not None and with_scores:
        if as_staff:
            score, max_score = run.score, run.max_score
        else:
            seen = report_for(session, run, assignment, submission.student_id, as_staff=False, now=now)
            score, max_score = seen["score"], seen["max_score"]
    return LiveStatus(
        submission_id=submission.id,
        status=status,
        queue_position=queue_position,
        started_at=started_at,
        probes_done=probes_done,
        probes_total=probes_total,
        questions=questions,
        score=score,
        max_score=max_score,
        graded_at=run.finished_at if run is not None else None,
    )


def _progress(recorded: str | None) -> tuple[set[str], int | None, int | None]:
    """A run's progress as its worker wrote it (GradingRun.progress): the checks that have run, the
    probes finished and in all (None before the first note)."""
    if not recorded:
        return set(), None, None
    note = json.loads(recorded)
    finished, total = note["probes"]
    return set(note["checks"]), int(finished), int(total)


def _by_question(catalog: str, checks_run: set[str], *, show_hidden: bool) -> tuple[QuestionProgress, ...]:
    questions, outline = catalog_outline(catalog)
    progress = []
    for question in questions:
        mine = [check for check in outline if check.question == question]
        named = tuple(
            CheckProgress(check.id, check.target, check.summary, check.visibility, check.id in checks_run)
            for check in mine
            if show_hidden or check.visibility != "hidden"
        )
        done = sum(1 for check in mine if check.id in checks_run)
        progress.append(QuestionProgress(question, done, len(mine), named))
    return tuple(progress)


@lru_cache(maxsize=16)
def catalog_outline(catalog: str) -> tuple[tuple[str, ...], tuple[CheckOutline, ...]]:
    """The catalog's questions and checks, in its order (the same for every seed; built once a process).
    None of either for a catalog this grader does not know."""
    try:
        assignment = get_assignment(catalog)
    except UnknownAssignment:
        return (), ()
    checks = assignment.build_checks(0)
    outline = tuple(CheckOutline(c.id, c.target, c.question, c.summary, c.visibility) for c in checks)
    return assignment.questions, outline


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
