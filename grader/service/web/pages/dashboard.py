"""An assignment's dashboard for its course's staff: /assignments/{id}/dashboard (the roster's grades, the
score histogram, each check's pass rate, the most frequent mistakes, the queue), its actions (regrade all,
an extension) and the grade exports, /assignments/{id}/grades.csv, with the browser's session.

The same services and access rules as the API's routes: authorize_assignment with Need.staff,
regrades.regrade_assignment, put_extension (and its announcement), grades_for and grades_csv.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from grader.service.accounts.caller import Caller
from grader.service.assignments.models import Assignment
from grader.service.assignments.service import authorize_assignment, put_extension
from grader.service.courses.access import Need
from grader.service.courses.models import Course
from grader.service.deps import SessionDep
from grader.service.errors import DomainError, InvalidInput
from grader.service.grades import service as grades
from grader.service.grades.announce import announce_grades
from grader.service.grades.exports import ExportFormat, grades_csv
from grader.service.grading import regrades
from grader.service.grading.schemas import RegradeProgress
from grader.service.web.browser import CsrfChecked, ViewerDep
from grader.service.web.dashboard_data import Dashboard, dashboard
from grader.service.web.rendering import render, when

router = APIRouter(include_in_schema=False)

EXPORTS = (
    (ExportFormat.canvas, "Canvas gradebook"),
    (ExportFormat.moodle, "Moodle grade import"),
    (ExportFormat.plain, "Every column (plain)"),
)
# The widest offsets there are (UTC-12 to UTC+14), and a margin: anything else is not a time zone.
MOST_OFFSET_MINUTES = 16 * 60


@dataclass(frozen=True)
class ExtensionError:
    """A refused extension, shown at its student's form with what was typed."""

    email: str
    typed: str
    message: str


def utc_input(moment: datetime) -> str:
    """A moment as a datetime-local input's value, in UTC (the page's script puts it in local time)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S" if moment.second else "%Y-%m-%dT%H:%M")


def due_moment(typed: str, offset: str) -> datetime:
    """The moment a datetime-local value names in a zone `offset` minutes east of UTC (what the page's
    script sends, as the course settings' pages do), or in UTC without one. InvalidInput otherwise."""
    typed = typed.strip()
    if not typed:
        raise InvalidInput("enter the new due date and time")
    try:
        moment = datetime.fromisoformat(typed)
    except ValueError:
        raise InvalidInput(
            f"{typed!r} is not a date and time: write it as YYYY-MM-DDTHH:MM, e.g. 2026-05-01T23:59"
        ) from None
    if moment.tzinfo is None:  # one typed with its own offset keeps it
        offset = offset.strip()
        try:
            minutes = int(offset) if offset else 0
        except ValueError:
            raise InvalidInput(f"the time zone offset {offset!r} is not a number of minutes") from None
        if abs(minutes) > MOST_OFFSET_MINUTES:
            raise InvalidInput(f"the time zone offset {minutes} minutes is not one there is")
        moment = moment.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{typed} is out of range") from None


def _dashboard_path(assignment_id: str) -> str:
    return f"/assignments/{assignment_id}/dashboard"


def _notices(board: Dashboard, regrade: str | None, extended: str | None) -> list[str]:
    notices = []
    progress = board.queue.regrade
    if regrade is not None and progress is not None and progress.regrade.id == regrade:
        if progress.regrade.jobs == 0 and progress.finished:
            notices.append(
                "Nothing to regrade: no student has a graded submission yet, or all of them are waiting "
                "in the queue already."
            )
        else:
            notices.append(
                f"Regrade all: {progress.regrade.jobs} submissions to grade again: {progress.queued} "
                f"waiting, {progress.running} running, {progress.done} done, {progress.failed} failed. "
                "Its progress is shown under Queue."
            )
    if extended is not None:
        line = next((line for line in board.roster if line.grade.student_id == extended), None)
        if line is not None and line.extended:
            notices.append(f"{line.grade.name} is now due {when(line.due_at)}.")
    return notices


def _page(
    request: Request,
    session: Session,
    viewer: Caller,
    assignment: Assignment,
    *,
    query: str = "",
    regrade: str | None = None,
    extended: str | None = None,
    extend: str | None = None,
    extension_error: ExtensionError | None = None,
    status_code: int = 200,
) -> Response:
    board = dashboard(session, assignment)
    if extension_error is not None:
        chosen = next((line for line in board.roster if line.grade.email == extension_error.email), None)
    else:
        chosen = next((line for line in board.roster if line.grade.student_id == extend), None)
    needle = query.strip().lower()
    shown = sum(1 for line in board.roster if needle in line.search_text) if needle else len(board.roster)
    context: dict[str, Any] = {
        "board": board,
        "assignment": assignment,
        "course": session.get(Course, assignment.course_id),
        "query": query.strip(),
        "needle": needle,
        "shown": shown,
        "exports": EXPORTS,
        "notices": _notices(board, regrade, extended),
        "extension_error": extension_error,
        "chosen": chosen,
        "utc_input": utc_input,
    }
    return render(request, "dashboard.html", context, viewer=viewer, status_code=status_code)


@router.get("/assignments/{assignment_id}/dashboard")
def assignment_dashboard(
    assignment_id: str,
    request: Request,
    session: SessionDep,
    viewer: ViewerDep,
    q: Annotated[str, Query(max_length=200)] = "",
    regrade: Annotated[str | None, Query(max_length=40)] = None,
    extended: Annotated[str | None, Query(max_length=40)] = None,
    extend: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """`q` filters the roster (the page's script filters as one types); `regrade` and `extended` show
    what the last action did; `extend` chooses the student of the extension form (without the script)."""
    assignment = authorize_assignment(session, viewer, assignment_id, Need.staff)
    return _page(
        request, session, viewer, assignment, query=q, regrade=regrade, extended=extended, extend=extend
    )


@router.post("/assignments/{assignment_id}/dashboard/regrade", dependencies=[CsrfChecked])
def regrade_all(
    assignment_id: str,
    session: SessionDep,
    viewer: ViewerDep,
    every_submission: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """POST /api/v1/assignments/{id}/regrade's service, then the dashboard with its progress."""
    assignment = authorize_assignment(session, viewer, assignment_id, Need.staff)
    regrade = regrades.regrade_assignment(
        session, assignment, requested_by=viewer.key, every_submission=bool(every_submission)
    )
    return RedirectResponse(f"{_dashboard_path(assignment.id)}?regrade={regrade.id}#queue", status_code=303)


@router.get("/assignments/{assignment_id}/dashboard/regrade")
def regrade_progress(assignment_id: str, session: SessionDep, viewer: ViewerDep) -> JSONResponse:
    """The last mass regrade's counts, which the dashboard's script polls while it runs (the page shows
    the same counts when it loads); 404 if the assignment was never regraded."""
    assignment = authorize_assignment(session, viewer, assignment_id, Need.staff)
    found = regrades.last_regrade(session, assignment)
    if found is None:
        return JSONResponse({"detail": "this assignment was never regraded"}, status_code=404)
    return JSONResponse(RegradeProgress.of(found).model_dump(mode="json"))


@router.post("/assignments/{assignment_id}/dashboard/extensions", dependencies=[CsrfChecked])
def grant_extension(
    assignment_id: str,
    request: Request,
    session: SessionDep,
    viewer: ViewerDep,
    email: Annotated[str, Form(max_length=320)] = "",
    due_at: Annotated[str, Form(max_length=64)] = "",
    tz_offset: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """POST /api/v1/assignments/{id}/extensions's service: the student's own due date, from the
    browser's local time (or UTC); the form again with what is wrong, if anything is."""
    assignment = authorize_assignment(session, viewer, assignment_id, Need.staff)
    try:
        moment = due_moment(due_at, tz_offset)
        _, student, _ = put_extension(session, assignment, email=email, due_at=moment)
    except DomainError as exc:
        message = str(exc)
        refused = ExtensionError(email=email, typed=due_at, message=message[:1].upper() + message[1:] + ".")
        status = exc.status_code if exc.status_code >= 400 else 422
        return _page(request, session, viewer, assignment, extension_error=refused, status_code=status)
    announce_grades(session, assignment, student_ids=[student.id])
    path = f"{_dashboard_path(assignment.id)}?extended={student.id}#student-{student.id}"
    return RedirectResponse(path, status_code=303)


@router.get("/assignments/{assignment_id}/grades.csv")
def export_grades(
    assignment_id: str,
    session: SessionDep,
    viewer: ViewerDep,
    export: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.plain,
) -> Response:
    """GET /api/v1/assignments/{id}/grades.csv with the browser's session (staff only)."""
    assignment, rows = grades.grades_for(session, viewer, assignment_id, everyone=True)
    text = grades_csv(assignment, rows, export, grades.catalog_max_score(assignment.catalog))
    filename = f"{assignment.slug}-grades-{export.value}.csv"
    return Response(
        content=text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
