"""Regrades: new runs of submissions already graded, through the same queue at a lower priority than
fresh submissions. Earlier runs stay; a regrade's score counts once its run is graded (the latest graded
run is a submission's score), and one that fails for the infrastructure's reasons leaves the old one."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.service.assignments.models import Assignment
from grader.service.grades.service import grade_rows
from grader.service.grading import queue
from grader.service.grading.models import PRIORITY_REGRADE, GradingJob, JobStatus, Regrade
from grader.service.submissions.models import Submission

# A job still waiting is the regrade; one already running may grade with an older grader (a rolling
# deploy): the regrade queues behind it.
WAITING = (JobStatus.queued,)


def regrade_submission(session: Session, submission: Submission) -> GradingJob:
    """A regrade job for the submission; the one already waiting if there is one (a double click
    regrades once: on PostgreSQL the submission's row is locked while we look)."""
    session.get(Submission, submission.id, with_for_update=True, populate_existing=True)
    waiting = session.scalar(
        select(GradingJob).where(GradingJob.submission_id == submission.id, GradingJob.status.in_(WAITING))
    )
    return waiting or queue.enqueue(session, submission_id=submission.id, priority=PRIORITY_REGRADE)


def regrade_assignment(
    session: Session, assignment: Assignment, *, requested_by: str, every_submission: bool
) -> Regrade:
    """Regrade every student's counting submission (or every submission): one job each, except those
    already waiting, which are not graded twice. While an earlier mass regrade of the same kind is
    unfinished, asking again answers it (a second click does not hide its progress)."""
    unfinished = last_regrade(session, assignment)
    if (
        unfinished is not None
        and not unfinished.finished
        and unfinished.regrade.every_submission == every_submission
    ):
        return unfinished.regrade
    if every_submission:
        chosen = list(session.scalars(select(Submission.id).where(Submission.assignment_id == assignment.id)))
    else:
        rows = grade_rows(session, assignment)
        chosen = [row.counting_submission_id for row in rows if row.counting_submission_id is not None]
    of_assignment = select(Submission.id).where(Submission.assignment_id == assignment.id)
    busy = set(
        session.scalars(
            select(GradingJob.submission_id).where(
                GradingJob.submission_id.in_(of_assignment), GradingJob.status.in_(WAITING)
            )
        )
    )
    regrade = Regrade(
        assignment_id=assignment.id, requested_by=requested_by, every_submission=every_submission
    )
    session.add(regrade)
    session.flush()
    for submission_id in sorted(set(chosen) - busy):
        queue.enqueue(session, submission_id=submission_id, priority=PRIORITY_REGRADE, regrade_id=regrade.id)
    regrade.jobs = len(set(chosen) - busy)
    session.flush()
    return regrade


@dataclass(frozen=True)
class Progress:
    regrade: Regrade
    queued: int
    running: int
    done: int
    failed: int

    @property
    def finished(self) -> bool:
        return self.queued + self.running == 0


def last_regrade(session: Session, assignment: Assignment) -> Progress | None:
    regrade = session.scalar(
        select(Regrade)
        .where(Regrade.assignment_id == assignment.id)
        .order_by(Regrade.created_at.desc(), Regrade.id)
        .limit(1)
    )
    if regrade is None:
        return None
    return progress(session, regrade)


def progress(session: Session, regrade: Regrade) -> Progress:
    states = Counter(session.scalars(select(GradingJob.status).where(GradingJob.regrade_id == regrade.id)))
    return Progress(
        regrade,
        queued=states[JobStatus.queued],
        running=states[JobStatus.running],
        done=states[JobStatus.done],
        failed=states[JobStatus.failed],
    )
