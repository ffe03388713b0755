"""Submitting and reading submissions, reports and runs: /api/v1/assignments/{id}/submissions,
/api/v1/submissions/{id}..."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Request, UploadFile, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.service.accounts.caller import Caller
from grader.service.assignments.models import Assignment
from grader.service.assignments.service import authorize_assignment, course_student
from grader.service.courses.access import Need, membership
from grader.service.courses.models import Role
from grader.service.deps import CallerDep, SessionDep, SettingsDep, StoreDep
from grader.service.errors import Forbidden, InvalidInput
from grader.service.grading.models import GradingRun
from grader.service.submissions.access import authorize_submission
from grader.service.submissions.models import Source, Submission
from grader.service.submissions.schemas import Accepted, RunOut, SubmissionOut
from grader.service.submissions.service import submit
from grader.service.submissions.uploads import read_upload
from grader.service.submissions.views import describe, latest_report

router = APIRouter(prefix="/api/v1", tags=["submissions"])
WRITE, READ, GRADES = "submissions:write", "submissions:read", "grades:read"


def _whose(
    session: Session, caller: Caller, assignment_id: str, student: str | None
) -> tuple[Assignment, str]:
    """The assignment and the student the submission is for: the caller, or (staff and tokens) the
    student named in the form."""
    own_email = caller.user.email_key if caller.user is not None else None
    if student is None or (own_email is not None and student.strip().lower() == own_email):
        if caller.user is None:
            raise InvalidInput("an API token submits on a student's behalf: give their email in 'student'")
        assignment = authorize_assignment(session, caller, assignment_id, Need.view)
        member = membership(session, assignment.course_id, caller.user.id)
        if member is None or member.role is not Role.student:
            raise InvalidInput("you are not a student of this course: give the student's email in 'student'")
        return assignment, caller.user.id
    try:
        assignment = authorize_assignment(session, caller, assignment_id, Need.staff, scope=WRITE)
    except Forbidden as exc:
        if caller.token is not None:
            raise
        raise Forbidden("students submit their own work only; leave out 'student'") from exc
    return assignment, course_student(session, assignment.course_id, student).id


@router.post("/assignments/{assignment_id}/submissions", status_code=status.HTTP_202_ACCEPTED)
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
    if caller.token is not None and not caller.has_scope(WRITE):
        authorize_assignment(session, caller, assignment_id, Need.staff, scope=WRITE)  # 404 or 403
    assignment, student_id = _whose(session, caller, assignment_id, student)
    upload = read_upload(files or [], settings.intake_limits(), settings.data_dir / "incoming")
    submission, _new = submit(
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
    (seen,) = describe(session, [submission], assignment, as_staff=True)
    url = str(request.url_for("get_submission", submission_id=submission.id))
    return Accepted(id=submission.id, status=seen.status, status_url=url)


@router.get("/assignments/{assignment_id}/submissions")
def list_submissions(assignment_id: str, session: SessionDep, caller: CallerDep) -> list[SubmissionOut]:
    """Staff and tokens: every submission; a student: their own. Oldest first."""
    query = select(Submission).order_by(Submission.created_at, Submission.id)
    try:
        assignment = authorize_assignment(session, caller, assignment_id, Need.staff, scope=READ)
        as_staff = True
    except Forbidden:
        if caller.token is not None:
            raise
        assignment = authorize_assignment(session, caller, assignment_id, Need.view)
        assert caller.user is not None
        query, as_staff = query.where(Submission.student_id == caller.user.id), False
    submissions = list(session.scalars(query.where(Submission.assignment_id == assignment.id)))
    return describe(session, submissions, assignment, as_staff=as_staff)


@router.get("/submissions/{submission_id}")
def get_submission(submission_id: str, session: SessionDep, caller: CallerDep) -> SubmissionOut:
    seen = authorize_submission(session, caller, submission_id, scope=READ)
    (described,) = describe(session, [seen.submission], seen.assignment, as_staff=seen.as_staff)
    return described


@router.get("/submissions/{submission_id}/report")
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
    return [
        RunOut(
            id=run.id,
            attempt=run.attempt,
            status=run.status,
            worker=run.worker,
            seed=run.seed,
            sandbox_image=run.sandbox_image,
            grader_version=run.grader_version,
            started_at=run.started_at,
            finished_at=run.finished_at,
            seconds=run.seconds,
            score=run.score,
            max_score=run.max_score,
            error=run.error,
        )
        for run in runs
    ]
