"""Regrades: /api/v1/submissions/{id}/regrade, /api/v1/assignments/{id}/regrade."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from grader.service.assignments.service import authorize_assignment
from grader.service.courses.access import Need
from grader.service.deps import CallerDep, SessionDep
from grader.service.errors import NotFound
from grader.service.grading import regrades
from grader.service.grading.models import JobStatus
from grader.service.grading.schemas import RegradeProgress, RegradeQueued
from grader.service.schemas import errors
from grader.service.submissions.access import authorize_submission

router = APIRouter(prefix="/api/v1", tags=["regrades"], responses=errors(401, 403, 404, 422))
STAFF_ONLY = "only the course's staff may regrade; a new submission is graded on its own"


@router.post("/submissions/{submission_id}/regrade", status_code=status.HTTP_202_ACCEPTED)
def regrade_submission(
    submission_id: str, request: Request, session: SessionDep, caller: CallerDep
) -> RegradeQueued:
    """Grade the submission again (staff): a new run, kept beside the earlier ones; its score counts
    once it is graded."""
    seen = authorize_submission(
        session, caller, submission_id, scope=None, staff_only=True, staff_reason=STAFF_ONLY
    )
    job = regrades.regrade_submission(session, seen.submission)
    url = str(request.url_for("get_submission", submission_id=seen.submission.id))
    state = "running" if job.status is JobStatus.running else "queued"
    return RegradeQueued(submission_id=seen.submission.id, job_id=job.id, status=state, status_url=url)


@router.post("/assignments/{assignment_id}/regrade", status_code=status.HTTP_202_ACCEPTED)
def regrade_assignment(
    assignment_id: str,
    session: SessionDep,
    caller: CallerDep,
    every_submission: Annotated[
        bool, Query(alias="all", description="every submission, not only the counting ones")
    ] = False,
) -> RegradeProgress:
    """Regrade every student's counting submission, or `?all=true` every submission (staff), after the
    queue's fresh submissions: a mass regrade never delays a student's feedback."""
    assignment = authorize_assignment(session, caller, assignment_id, Need.staff)
    regrade = regrades.regrade_assignment(
        session, assignment, requested_by=caller.key, every_submission=every_submission
    )
    return RegradeProgress.of(regrades.progress(session, regrade))


@router.get("/assignments/{assignment_id}/regrade")
def last_regrade(assignment_id: str, session: SessionDep, caller: CallerDep) -> RegradeProgress:
    """The progress of the assignment's last mass regrade (staff); 404 if there was none."""
    assignment = authorize_assignment(session, caller, assignment_id, Need.staff)
    found = regrades.last_regrade(session, assignment)
    if found is None:
        raise NotFound("this assignment was never regraded")
    return RegradeProgress.of(found)
