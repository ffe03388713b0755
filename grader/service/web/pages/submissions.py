"""A student's assignment page (hand in, see the attempts) and a submission's page (live while it grades,
then its report): /assignments/{id}, /assignments/{id}/submit, /submissions/{id} and its status/events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.types import Receive, Scope, Send

from grader.intake.uploads import GRADED_FILES, REQUIRED_FILES
from grader.service.deps import SessionDep, SettingsDep, StoreDep
from grader.service.errors import DomainError, InvalidInput, TooSoon
from grader.service.grading.models import GradingRun
from grader.service.submissions.access import (
    GRADES,
    authorize_listing,
    authorize_submission,
    authorize_submitting,
)
from grader.service.submissions.models import Source, Submission
from grader.service.submissions.schemas import RunOut
from grader.service.submissions.service import due_for, submit
from grader.service.submissions.uploads import UPLOAD_MESSAGES, read_upload
from grader.service.submissions.views import describe, latest_graded_runs, report_for
from grader.service.web.browser import (
    CSRF_HEADER,
    SESSION_COOKIE,
    CsrfChecked,
    ViewerDep,
    viewer_from_request,
)
from grader.service.web.live import live_payload
from grader.service.web.rendering import render
from grader.service.web.report_view import changes_since, questions_of

router = APIRouter(include_in_schema=False)
EVENT_SECONDS = 1.0  # how often a watched submission's state is read
IDEMPOTENCY_KEY_MOST = 200  # as the API's header (the column's size)
EVENT_MOST_SECONDS = 15 * 60  # a stream ends after this; the page's script reconnects if still open


@router.get("/assignments/{assignment_id}")
def assignment_page(assignment_id: str, request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    assignment, only_student = authorize_listing(session, viewer, assignment_id)
    if only_student is None:  # staff: the dashboard is their page of an assignment
        return RedirectResponse(f"/assignments/{assignment.id}/dashboard", status_code=303)
    mine = list(
        session.scalars(
            select(Submission)
            .where(Submission.assignment_id == assignment.id, Submission.student_id == only_student)
            .order_by(Submission.created_at.desc(), Submission.id)
        )
    )
    attempts = describe(session, mine, assignment, as_staff=False)
    limits = request.app.state.settings.intake_limits()
    upload_rules = {
        "graded": list(GRADED_FILES),
        "required": list(REQUIRED_FILES),
        "maxUploadBytes": limits.max_upload_bytes,
        "maxFileBytes": limits.max_file_bytes,
        "messages": UPLOAD_MESSAGES,
    }
    left = None if assignment.max_submissions is None else max(0, assignment.max_submissions - len(mine))
    context = {
        "assignment": assignment,
        "due_at": due_for(session, assignment, only_student),
        "attempts": attempts,
        "attempts_left": left,
        "upload_rules": json.dumps(upload_rules),
        "graded_files": GRADED_FILES,
        "required_files": REQUIRED_FILES,
    }
    return render(request, "assignment.html", context, viewer=viewer)


@router.post("/assignments/{assignment_id}/submit", dependencies=[CsrfChecked])
def hand_in(
    assignment_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    viewer: ViewerDep,
    files: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    """The same hand-in as POST /api/v1/assignments/{id}/submissions. The page's script sends it with
    fetch (the CSRF header) and wants JSON; a plain form gets the submission's page or an error page."""
    wants_json = CSRF_HEADER.lower() in request.headers
    key = request.headers.get("Idempotency-Key")
    try:
        if key is not None and len(key) > IDEMPOTENCY_KEY_MOST:
            raise InvalidInput(f"the Idempotency-Key is longer than {IDEMPOTENCY_KEY_MOST} characters")
        assignment, student_id = authorize_submitting(session, viewer, assignment_id, None)
        upload = read_upload(files or [], settings.intake_limits(), settings.data_dir / "incoming")
        submission, _ = submit(
            session,
            store,
            assignment=assignment,
            student_id=student_id,
            upload=upload,
            caller=viewer.key,
            submitted_by_id=student_id,
            source=Source.web,
            idempotency_key=key,
        )
    except DomainError as exc:
        if wants_json:
            headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooSoon) else None
            return JSONResponse({"detail": str(exc)}, status_code=exc.status_code, headers=headers)
        raise
    url = f"/submissions/{submission.id}"
    if wants_json:
        return JSONResponse({"id": submission.id, "url": url}, status_code=202)
    return RedirectResponse(url, status_code=303)


def _previous_attempt(
    session: Session, submission: Submission
) -> tuple[Submission | None, GradingRun | None]:
    """The same student's attempt before this one, and its latest graded run."""
    earlier = session.scalar(
        select(Submission)
        .where(
            Submission.assignment_id == submission.assignment_id,
            Submission.student_id == submission.student_id,
            Submission.created_at < submission.created_at,
        )
        .order_by(Submission.created_at.desc())
        .limit(1)
    )
    if earlier is None:
        return None, None
    run = latest_graded_runs(session, [earlier.id]).get(earlier.id)
    return earlier, run


@router.get("/submissions/{submission_id}")
def submission_page(submission_id: str, request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    seen = authorize_submission(session, viewer, submission_id, scope=GRADES)
    submission, assignment = seen.submission, seen.assignment
    (described,) = describe(session, [submission], assignment, as_staff=seen.as_staff)
    run = latest_graded_runs(session, [submission.id]).get(submission.id)
    report = (
        report_for(session, run, assignment, submission.student_id, as_staff=seen.as_staff) if run else None
    )
    earlier, earlier_run = _previous_attempt(session, submission)
    changes = None
    if report is not None and earlier_run is not None:
        before = report_for(session, earlier_run, assignment, submission.student_id, as_staff=seen.as_staff)
        changes = changes_since(before, report)
    runs = []
    if seen.as_staff:
        runs = [
            RunOut.model_validate(r)
            for r in session.scalars(
                select(GradingRun)
                .where(GradingRun.submission_id == submission.id)
                .order_by(GradingRun.started_at, GradingRun.attempt)
            )
        ]
    context = {
        "submission": submission,
        "described": described,
        "assignment": assignment,
        "report": report,
        "questions": questions_of(report) if report else [],
        "as_staff": seen.as_staff,
        "earlier": earlier,
        "changes": changes,
        "runs": runs,
        "run": run,
        "live": live_payload(session, submission, as_staff=seen.as_staff),
    }
    return render(request, "submission.html", context, viewer=viewer)


@router.get("/submissions/{submission_id}/status")
def submission_status(submission_id: str, session: SessionDep, viewer: ViewerDep) -> JSONResponse:
    """The polling fallback of the live page: the same payload as one server-sent event."""
    seen = authorize_submission(session, viewer, submission_id, scope=GRADES)
    return JSONResponse(live_payload(session, seen.submission, as_staff=seen.as_staff))


@router.get("/submissions/{submission_id}/events")
async def submission_events(submission_id: str, request: Request) -> Response:
    """Server-sent events: the live state each second while it changes, until graded or failed. Holds
    no database connection between reads and no thread while it waits (RequestLimit lets it by)."""
    browser = request.cookies.get(SESSION_COOKIE, "")
    if not STREAMS.may_open(browser):  # the page's script then polls, through the API's RequestLimit
        return JSONResponse(
            {"detail": "too many live pages open"}, status_code=429, headers={"Retry-After": "5"}
        )
    STREAMS.opened(browser)
    try:
        first = await run_in_threadpool(_read_live, request, submission_id)
    except BaseException:
        STREAMS.closed(browser)
        raise
    if isinstance(first, Response):
        STREAMS.closed(browser)
        return first

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    events = _events(request, submission_id, first)
    return SlotStream(browser, events, media_type="text/event-stream", headers=headers)


class SlotStream(StreamingResponse):
    """A stream that gives its browser's slot back however it ends: a browser gone before the body starts
    cancels the response without ever running its generator (whose own `finally` would then never run)."""

    def __init__(self, browser: str, content: AsyncIterator[str], **keywords: Any) -> None:
        super().__init__(content, **keywords)
        self.browser = browser

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            STREAMS.closed(self.browser)


async def _events(request: Request, submission_id: str, first: dict[str, Any]) -> AsyncIterator[str]:
    payload, waited, sent = first, 0.0, ""
    while True:
        text = json.dumps(payload)
        if text != sent:
            yield f"event: status\ndata: {text}\n\n"
            sent = text
        if payload["final"] or waited >= EVENT_MOST_SECONDS or await request.is_disconnected():
            return
        await asyncio.sleep(EVENT_SECONDS)
        waited += EVENT_SECONDS
        again = await run_in_threadpool(_read_live, request, submission_id)
        if isinstance(again, Response):
            return
        payload = again


class StreamSlots:
    """How many live streams are open, in all and per browser: each reads the database every second on
    FastAPI's threads, outside RequestLimit, so their number is capped here (the event loop's one thread
    changes these counts: no lock)."""

    def __init__(self, *, most: int, per_browser: int) -> None:
        self.most, self.per_browser = most, per_browser
        self.total = 0
        self.by_browser: dict[str, int] = {}

    def may_open(self, browser: str) -> bool:
        return self.total < self.most and self.by_browser.get(browser, 0) < self.per_browser

    def opened(self, browser: str) -> None:
        self.total += 1
        self.by_browser[browser] = self.by_browser.get(browser, 0) + 1

    def closed(self, browser: str) -> None:
        self.total -= 1
        left = self.by_browser.get(browser, 1) - 1
        if left:
            self.by_browser[browser] = left
        else:
            self.by_browser.pop(browser, None)


STREAMS = StreamSlots(most=100, per_browser=4)


def _read_live(request: Request, submission_id: str) -> dict[str, Any] | Response:
    """One read of the live state, in its own short session, with the viewer checked every time (a
    session that ended, a student removed from the course, stops the stream)."""
    with request.app.state.sessions() as session:
        viewer = viewer_from_request(request, session)
        if viewer is None:
            return JSONResponse({"detail": "sign in again"}, status_code=401)
        try:
            seen = authorize_submission(session, viewer, submission_id, scope=GRADES)
        except DomainError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=exc.status_code)
        return live_payload(session, seen.submission, as_staff=seen.as_staff)
