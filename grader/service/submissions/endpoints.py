"""Submitting and reading submissions, reports and runs: /api/v1/assignments/{id}/submissions,
/api/v1/submissions/{id}..."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Request, UploadFile, status
from sqlalchemy import select

from grader.service.deps import CallerDep, SessionDep, SettingsDep, StoreDep
from grader.service.grading.models import GradingRun
from grader.service.schemas import errors
from grader.service.submissions.access import (
    GRADES,
    READ,
    authorize_listing,
    authorize_submission,
    authorize_submitting,
    may_see_scores,
)
from grader.service.submissions.models import Source, Submission
from grader.service.submissions.schemas import Accepted, RunOut, SubmissionOut
from grader.service.submissions.service import submit
from grader.service.submissions.uploads import read_upload
from grader.service.submissions.views import describe, latest_report

router = APIRouter(prefix="/api/v1", tags=["submissions"], responses=errors(401, 403, 404, 422))


@router.post(
    "/assignments/{assignment_id}/submissions",
    status_code=status.HTTP_202_ACCEPTED,
    responses=errors(409, 413, 429),
)
def create_submission(
    assignment_id: str,
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    settings: SettingsDep,
    store: StoreDep,
    files: Annotated[list[UploadFile] | None, File(description="loose .py files, or one .zip")] = None,
    student: Annotated[str | None, Form(max_length=320, description="staff and tokens: whose work")] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> Accepted:
    """Hand in files for grading: 202 once the files, the submission and its grading job are stored.
    The same Idempotency-Key from the same caller returns the same submission, never a second one."""
    assignment, student_id = authorize_submitting(session, caller, assignment_id, student)
    upload = read_upload(files or [], settings.intake_limits(), settings.data_dir / "incoming")
    submission, new = submit(
        session,
        store,
        assignment=assignment,
        student_id=student_id,
        upload=upload,
        caller=caller.key,
        submitted_by_id=caller.user.id if caller.user is not None else None,
        source=Source.api,
        idempotency_key=idempotency_key,
    )
    url = str(request.url_for("get_submission", submission_id=submission.id))
    if new:
        return Accepted(id=submission.id, status="queued", status_url=url)
    (earlier,) = describe(session, [submission], assignment, as_staff=True, with_scores=False)  # a retry
    return Accepted(id=submission.id, status=earlier.status, status_url=url)


@router.get("/assignments/{assignment_id}/submissions")
def list_submissions(assignment_id: str, session: SessionDep, caller: CallerDep) -> list[SubmissionOut]:
    """Staff and tokens: every submission; a student: their own. Oldest first."""
    assignment, only_student = authorize_listing(session, caller, assignment_id)
    query = select(Submission).where(Submission.assignment_id == assignment.id)
    if only_student is not None:
        query = query.where(Submission.student_id == only_student)
    submissions = list(session.scalars(query.order_by(Submission.created_at, Submission.id)))
    scores = may_see_scores(caller)
    return describe(session, submissions, assignment, as_staff=only_student is None, with_scores=scores)


@router.get("/submissions/{submission_id}")
def get_submission(submission_id: str, session: SessionDep, caller: CallerDep) -> SubmissionOut:
    seen = authorize_submission(session, caller, submission_id, scope=READ)
    scores = may_see_scores(caller)
    (described,) = describe(
        session, [seen.submission], seen.assignment, as_staff=seen.as_staff, with_scores=scores
    )
    return described


@router.get("/submissions/{submission_id}/report", responses=errors(409))
def get_report(submission_id: str, session: SessionDep, caller: CallerDep) -> dict[str, Any]:
    """The `grader grade --json` report of the latest graded run (409 until there is one); a student's
    shows hidden checks only as the assignment allows, and never the seed."""
    seen = authorize_submission(session, caller, submission_id, scope=GRADES)
    report: dict[str, Any] = latest_report(session, seen.submission, seen.assignment, as_staff=seen.as_staff)
    return report


@router.get("/submissions/{submission_id}/runs")
def list_runs(submission_id: str, session: SessionDep, caller: CallerDep) -> list[RunOut]:
    """Every grading run of the submission, with its seed, image and timings (staff only)."""
    seen = authorize_submission(session, caller, submission_id, scope=GRADES, staff_only=True)
    runs = session.scalars(
        select(GradingRun)
        .where(GradingRun.submission_id == seen.submission.id)
        .order_by(GradingRun.started_at, GradingRun.attempt)
    )
    return [RunOut.model_validate(run) for run in runs]
