"""A course's settings for its staff: /courses/{course_id}/settings and the pages under it.

The course and its assignments (with their webhooks and delivery logs), its members and roster imports,
its API tokens. Every change calls the same domain service as the REST API's route, after the same access
rule (`authorize_course`: staff may look, instructors and admins change what the API lets only them
change), and input is checked by the API's own request schemas. A POST that works redirects back (303)
with a notice; one that fails renders its form again with the error and what was typed. Secrets (an API
token, a webhook's secret, a password link) are shown once, on the page the POST redirects to, from a
short-lived signed cookie bound to the viewer: a reload neither shows them again nor repeats the POST.

Times are entered in the viewer's own time zone: static/settings.js fills each date-time's hidden
`<name>_utc_offset` field (minutes east of UTC, for that very date); without it, times are UTC.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from grader.assignments import known_assignments
from grader.service.accounts import service as accounts_service
from grader.service.accounts.caller import Caller
from grader.service.accounts.invites import invite_expires_at, invite_url, issue_invite
from grader.service.accounts.models import ApiToken, User
from grader.service.accounts.schemas import TokenCreate
from grader.service.accounts.tokens import SCOPES
from grader.service.assignments import service as assignments_service
from grader.service.assignments.models import Assignment, Counting, HiddenResults, LatePolicy
from grader.service.assignments.schemas import AssignmentCreate, AssignmentPatch
from grader.service.courses import service as courses_service
from grader.service.courses.access import Need, authorize_course
from grader.service.courses.models import Course, Role
from grader.service.courses.roster import MAX_ROSTER_BYTES
from grader.service.courses.schemas import CoursePatch, MemberPut
from grader.service.deps import SessionDep, SettingsDep
from grader.service.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound, TooLarge
from grader.service.grades.announce import announce_grades
from grader.service.web.browser import CsrfChecked, ViewerDep, secure_cookies
from grader.service.web.rendering import render, when
from grader.service.webhooks import service as webhooks_service
from grader.service.webhooks.models import Webhook
from grader.service.webhooks.schemas import WebhookCreate
from grader.settings import Settings

router = APIRouter(include_in_schema=False)

# The domain errors a form's user can fix (NotFound, and the access rule's Forbidden, are error pages).
FIXABLE = (InvalidInput, Conflict, TooLarge, Forbidden)
DELIVERIES_SHOWN = 100  # the delivery log's newest deliveries
MOST_OFFSET_MINUTES = 18 * 60  # as far from UTC as a time zone is (pydantic's own bound)
MOST_INTERVAL_MINUTES = 7 * 24 * 60  # AssignmentCreate's min_interval_seconds, in minutes

ROLE_NAMES = {Role.instructor: "instructor", Role.ta: "TA", Role.student: "student"}
LATE_POLICY_NAMES = {
    LatePolicy.none: "No late submissions",
    LatePolicy.per_day: "Late submissions lose a share of the score per started day",
}
COUNTING_NAMES = {
    Counting.best: "The best graded submission counts",
    Counting.last: "The latest graded submission counts",
}
HIDDEN_NAMES = {
    HiddenResults.after_due: "After the due date (the student's own, with an extension)",
    HiddenResults.always: "Always: students see hidden checks' results at once",
    HiddenResults.never: "Never: students see only the visible checks",
}
SCOPE_NAMES = {
    "submissions:write": "Hand in for the course's students (an LMS that forwards uploads)",
    "submissions:read": "Read submissions, their status and feedback",
    "grades:read": "Read grades and exports",
}
assert set(SCOPE_NAMES) == set(SCOPES)

# The form's name of each field of the API's schemas, and what its label says (for messages).
ASSIGNMENT_LABELS = {
    "title": "Title",
    "slug": "Slug",
    "catalog": "Catalog",
    "due_at": "Due date",
    "late_policy": "Late policy",
    "penalty_percent": "Penalty per day",
    "max_late_days": "Most late days",
    "counting": "Which submission counts",
    "max_submissions": "Most submissions",
    "min_interval_minutes": "Minutes between submissions",
    "hidden_results": "Hidden checks' results",
    "canvas_assignment_id": "Canvas assignment id",
}
SCHEMA_FIELDS = {"penalty_per_day": "penalty_percent", "min_interval_seconds": "min_interval_minutes"}
COURSE_LABELS = {"title": "Course title", "login_email_pattern": "Login email pattern"}
MEMBER_LABELS = {"email": "Email", "name": "Name", "role": "Role", "student_number": "Student number"}
TOKEN_LABELS = {"name": "Token name", "scopes": "Scopes"}
WEBHOOK_LABELS = {"url": "Receiver URL"}


def _base(course_id: str) -> str:
    return f"/courses/{course_id}/settings"


# ---- what a form sent, and what was wrong with it ------------------------------------------------------


async def posted_form(request: Request) -> FormData:
    """The request's form (parsed once: the CSRF check has read it already)."""
    return await request.form()


FormDep = Annotated[FormData, Depends(posted_form)]


class FormProblem(Exception):
    """Input the form's own parsing refuses, before any schema or service sees it."""

    def __init__(self, message: str, field_name: str) -> None:
        super().__init__(message)
        self.field_name = field_name


@dataclass
class FormState:
    """A form as the page shows it: the values to fill in, and what is wrong (with which fields)."""

    id: str
    values: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    invalid: set[str] = field(default_factory=set)
    checked: set[str] = field(default_factory=set)  # ticked checkboxes (and chosen multi-values)

    def value(self, name: str) -> str:
        return self.values.get(name, "")

    def has_error(self, name: str) -> bool:
        return name in self.invalid


def _texts(form: FormData, names: Iterable[str]) -> dict[str, str]:
    values = {}
    for name in names:
        value = form.get(name)
        values[name] = value if isinstance(value, str) else ""
    return values


def _ticked(form: FormData, names: Iterable[str]) -> set[str]:
    return {name for name in names if form.get(name) is not None}


def _friendly(error: Mapping[str, Any]) -> str:
    if error.get("type") == "string_pattern_mismatch":
        return "use digits only"
    if error.get("type") == "too_short" and error.get("input") == []:
        return "choose at least one"
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")


def _fail(state: FormState, exc: Exception, labels: Mapping[str, str]) -> int:
    """Record what went wrong in the form; the HTTP status of the page that shows it again."""
    if isinstance(exc, ValidationError):
        for error in exc.errors():
            name = SCHEMA_FIELDS.get(str(error["loc"][0]), str(error["loc"][0])) if error["loc"] else ""
            state.invalid.add(name)
            state.errors.append(f"{labels.get(name, name or 'The form')}: {_friendly(error)}")
        return 422
    if isinstance(exc, FormProblem):
        state.invalid.add(exc.field_name)
        state.errors.append(str(exc))
        return 422
    state.errors.append(_sentence(str(exc)))
    return exc.status_code if isinstance(exc, FIXABLE) else 422


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _optional(text: str) -> str | None:
    return text.strip() or None


def _number(text: str, label: str, name: str, *, low: float, high: float) -> float | None:
    if not text.strip():
        return None
    try:
        number = float(text)
    except ValueError:
        raise FormProblem(f"{label}: {text.strip()!r} is not a number", name) from None
    if not low <= number <= high:
        raise FormProblem(f"{label}: between {low:g} and {high:g}", name)
    return number


def moment(text: str, offset: str, *, label: str, name: str) -> datetime:
    """A date-time entered in a datetime-local input, `offset` minutes east of UTC (none: UTC), in UTC."""
    if not text.strip():
        raise FormProblem(f"{label}: enter a date and a time", name)
    try:
        entered = datetime.fromisoformat(text.strip())
    except ValueError:
        raise FormProblem(
            f"{label}: {text.strip()!r} is not a date and time like 2026-05-01T23:59", name
        ) from None
    if entered.tzinfo is None:
        try:
            minutes = int(offset) if offset.strip() else 0
        except ValueError:
            raise FormProblem(f"{label}: the time zone offset {offset!r} is not a number", name) from None
        if abs(minutes) > MOST_OFFSET_MINUTES:
            raise FormProblem(f"{label}: the time zone offset {minutes} minutes is out of range", name)
        entered = entered.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    try:
        return entered.astimezone(UTC)
    except OverflowError:
        raise FormProblem(f"{label}: the moment is out of range", name) from None


def local_input(moment_utc: datetime) -> str:
    """A moment as a datetime-local input's value, in UTC (settings.js shows it in the viewer's zone)."""
    moment_utc = moment_utc.astimezone(UTC)
    if moment_utc.second or moment_utc.microsecond:
        return moment_utc.strftime("%Y-%m-%dT%H:%M:%S")
    return moment_utc.strftime("%Y-%m-%dT%H:%M")


def _decimal(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


# ---- secrets and notices across the redirect -----------------------------------------------------------

FLASH_COOKIE = "grader_settings_flash"
FLASH_SECONDS = 120


@dataclass(frozen=True)
class ShownOnce:
    """A secret the page shows once: what it is, its value, and what to do with it."""

    label: str
    value: str
    hint: str


@dataclass(frozen=True)
class Flash:
    notices: list[str]
    shown: ShownOnce | None = None


def _mac(body: str, secret: str) -> str:
    return hmac.new(secret.encode(), b"settings-flash:" + body.encode(), hashlib.sha256).hexdigest()


# The secrets themselves stay in this process (the pages are served by one `grader serve`): the cookie
# carries only a random name for one, so no secret sits in the browser's cookie store or travels again.
_SECRETS: dict[str, tuple[float, ShownOnce]] = {}
_SECRETS_LOCK = threading.Lock()


def _keep_secret(shown: ShownOnce, now: float) -> str:
    name = secrets.token_urlsafe(18)
    with _SECRETS_LOCK:
        for stale in [key for key, (at, _) in _SECRETS.items() if now - at > FLASH_SECONDS]:
            del _SECRETS[stale]
        _SECRETS[name] = (now, shown)
    return name


def _take_secret(name: object) -> ShownOnce | None:
    if not isinstance(name, str):
        return None
    with _SECRETS_LOCK:
        kept = _SECRETS.pop(name, None)
    return kept[1] if kept is not None else None


def seal_flash(flash: Flash, *, user_id: str, secret: str, now: float | None = None) -> str:
    moment = now if now is not None else time.time()
    payload: dict[str, object] = {"u": user_id, "t": int(moment), "notices": flash.notices}
    if flash.shown is not None:
        payload["s"] = _keep_secret(flash.shown, moment)
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
    body = body.rstrip("=")
    return f"{body}.{_mac(body, secret)}"


def open_flash(value: str, *, user_id: str, secret: str, now: float | None = None) -> Flash | None:
    """The flash a cookie holds, if it is ours, recent and the viewer's (never another person's secret);
    its secret, once."""
    body, _, mac = value.partition(".")
    if not body or not hmac.compare_digest(mac, _mac(body, secret)):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        age = (now if now is not None else time.time()) - float(payload["t"])
        if payload["u"] != user_id or not 0 <= age <= FLASH_SECONDS:
            return None
        return Flash(
            notices=[str(notice) for notice in payload.get("notices", [])],
            shown=_take_secret(payload.get("s")),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _secure(settings: Settings) -> bool:
    return secure_cookies(settings)


def back(
    settings: Settings,
    viewer: Caller,
    course_id: str,
    path: str,
    notice: str,
    *,
    shown: ShownOnce | None = None,
) -> Response:
    """303 to the page the form was on, which shows the notice (and the secret) once."""
    assert viewer.user is not None
    response = RedirectResponse(path, status_code=303)
    sealed = seal_flash(
        Flash([notice], shown), user_id=viewer.user.id, secret=settings.secret_key.get_secret_value()
    )
    response.set_cookie(
        FLASH_COOKIE,
        sealed,
        max_age=FLASH_SECONDS,
        httponly=True,
        samesite="lax",
        secure=_secure(settings),
        path=_base(course_id),
    )
    return response


# ---- the pages' frame ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    course: Course
    can_manage: bool  # instructors and admins; TAs only look


def settings_access(session: Session, viewer: Caller, course_id: str) -> Access:
    """The course for its staff (Forbidden for its students, NotFound for others), and whether they may
    change it."""
    course = authorize_course(session, viewer, course_id, Need.staff)
    try:
        authorize_course(session, viewer, course_id, Need.manage)
    except Forbidden:
        return Access(course, can_manage=False)
    return Access(course, can_manage=True)


def settings_page(
    request: Request,
    viewer: Caller,
    access: Access,
    template: str,
    context: dict[str, Any],
    *,
    tab: str,
    status_code: int = 200,
    notices: list[str] | None = None,
    flash: bool | None = None,
) -> Response:
    """A settings page: the tabs, the notices (and a secret shown once) the last redirect left. `flash`
    (default: the page is a 200, not a form shown again with its errors) takes those."""
    settings: Settings = request.app.state.settings
    course_id = access.course.id
    takes_flash = status_code == 200 if flash is None else flash
    cookie = request.cookies.get(FLASH_COOKIE) if takes_flash else None
    taken = None
    if cookie and viewer.user is not None:
        taken = open_flash(cookie, user_id=viewer.user.id, secret=settings.secret_key.get_secret_value())
    full = {
        "course": access.course,
        "can_manage": access.can_manage,
        "tab": tab,
        "base": _base(course_id),
        "notices": [*(taken.notices if taken else []), *(notices or [])],
        "shown": taken.shown if taken else None,
        **context,
    }
    response = render(
        request, template, full, viewer=viewer, status_code=status_code, headers={"Cache-Control": "no-store"}
    )
    if cookie:
        response.delete_cookie(
            FLASH_COOKIE, path=_base(course_id), httponly=True, samesite="lax", secure=_secure(settings)
        )
    return response


def _manager(session: Session, viewer: Caller, course_id: str) -> Course:
    return authorize_course(session, viewer, course_id, Need.manage)


# ---- the course and its assignments --------------------------------------------------------------------


def catalog_choices() -> list[tuple[str, str]]:
    """Each known catalog, named with its edition when its title has one: cs231n-a2-fc (2021 onwards)."""
    choices = []
    for name, catalog in known_assignments().items():
        edition = catalog.title.rpartition("(")[2].removesuffix(")").removesuffix(" edition")
        choices.append((name, f"{name} ({edition})" if "(" in catalog.title else name))
    return sorted(choices)


def course_form(course: Course) -> FormState:
    values = {"title": course.title, "login_email_pattern": course.login_email_pattern or ""}
    return FormState("course", values)


def new_assignment_form() -> FormState:
    values = {
        "catalog": "cs231n-a2-fc",
        "late_policy": LatePolicy.none.value,
        "penalty_percent": "0",
        "counting": Counting.best.value,
        "hidden_results": HiddenResults.after_due.value,
    }
    return FormState("new-assignment", values)


def assignment_form(assignment: Assignment) -> FormState:
    interval = assignment.min_interval_seconds
    values = {
        "title": assignment.title,
        "slug": assignment.slug,
        "catalog": assignment.catalog,
        "due_at": local_input(assignment.due_at),
        "due_at_utc": assignment.due_at.astimezone(UTC).isoformat(),  # settings.js: into the viewer's zone
        "late_policy": assignment.late_policy.value,
        "penalty_percent": _decimal(assignment.penalty_per_day * 100),
        "max_late_days": "" if assignment.max_late_days is None else str(assignment.max_late_days),
        "counting": assignment.counting.value,
        "max_submissions": "" if assignment.max_submissions is None else str(assignment.max_submissions),
        "min_interval_minutes": "" if interval is None else _decimal(interval / 60),
        "hidden_results": assignment.hidden_results.value,
        "canvas_assignment_id": assignment.canvas_assignment_id or "",
    }
    return FormState("assignment", values)


ASSIGNMENT_FORM_FIELDS = (*ASSIGNMENT_LABELS, "due_at_utc_offset")


def assignment_fields(values: Mapping[str, str]) -> dict[str, Any]:
    """The API schema's fields from the form's (percent, minutes and local times made the API's units)."""
    label = ASSIGNMENT_LABELS
    penalty = _number(values["penalty_percent"], label["penalty_percent"], "penalty_percent", low=0, high=100)
    interval = _number(
        values["min_interval_minutes"],
        label["min_interval_minutes"],
        "min_interval_minutes",
        low=0,
        high=MOST_INTERVAL_MINUTES,
    )
    return {
        "title": values["title"],
        "slug": values["slug"].strip(),
        "catalog": values["catalog"],
        "due_at": moment(values["due_at"], values["due_at_utc_offset"], label=label["due_at"], name="due_at"),
        "late_policy": values["late_policy"],
        "penalty_per_day": 0.0 if penalty is None else round(penalty / 100, 6),
        "max_late_days": _optional(values["max_late_days"]),
        "counting": values["counting"],
        "max_submissions": _optional(values["max_submissions"]),
        "min_interval_seconds": None if interval is None else round(interval * 60),
        "hidden_results": values["hidden_results"],
        "canvas_assignment_id": _optional(values["canvas_assignment_id"]),
    }


def late_summary(assignment: Assignment) -> str:
    if assignment.late_policy is LatePolicy.none:
        return "No late submissions"
    text = f"−{_decimal(assignment.penalty_per_day * 100)} % per day"
    if assignment.max_late_days is not None:
        text += f", at most {assignment.max_late_days} day{'s' if assignment.max_late_days != 1 else ''}"
    return text


def limits_summary(assignment: Assignment) -> str:
    parts = []
    if assignment.max_submissions is not None:
        parts.append(f"at most {assignment.max_submissions}")
    if assignment.min_interval_seconds:
        parts.append(f"{_decimal(assignment.min_interval_seconds / 60)} min apart")
    return ", ".join(parts) or "no limit"


def _overview(
    request: Request,
    session: Session,
    viewer: Caller,
    access: Access,
    *,
    course: FormState | None = None,
    new_assignment: FormState | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "assignments": assignments_service.assignments_of(session, access.course),
        "course_form": course or course_form(access.course),
        "new_form": new_assignment or new_assignment_form(),
        "catalogs": catalog_choices(),
        "late_summary": late_summary,
        "limits_summary": limits_summary,
        **_choices(),
    }
    return settings_page(
        request,
        viewer,
        access,
        "settings/overview.html",
        context,
        tab="course",
        status_code=status_code,
    )


def _choices() -> dict[str, Any]:
    return {
        "late_policies": LATE_POLICY_NAMES,
        "countings": COUNTING_NAMES,
        "hidden_choices": HIDDEN_NAMES,
    }


@router.get("/courses/{course_id}/settings")
def overview(course_id: str, request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    return _overview(request, session, viewer, settings_access(session, viewer, course_id))


@router.post("/courses/{course_id}/settings/course", dependencies=[CsrfChecked])
def change_course(
    course_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    viewer: ViewerDep,
    form: FormDep,
) -> Response:
    course = _manager(session, viewer, course_id)
    state = FormState("course", _texts(form, COURSE_LABELS))
    try:
        body = CoursePatch.model_validate(
            {
                "title": state.value("title"),
                "login_email_pattern": _optional(state.value("login_email_pattern")),
            }
        )
        courses_service.change_course(session, course, body.model_dump())
    except (ValidationError, *FIXABLE) as exc:
        session.rollback()
        status = _fail(state, exc, COURSE_LABELS)
        if "login_email_pattern" in str(exc):
            state.invalid.add("login_email_pattern")
        return _overview(request, session, viewer, Access(course, True), course=state, status_code=status)
    return back(settings, viewer, course_id, _base(course_id), "The course's details were saved.")


@router.post("/courses/{course_id}/settings/assignments", dependencies=[CsrfChecked])
def create_assignment(
    course_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    viewer: ViewerDep,
    form: FormDep,
) -> Response:
    course = _manager(session, viewer, course_id)
    state = FormState("new-assignment", _texts(form, ASSIGNMENT_FORM_FIELDS))
    try:
        body = AssignmentCreate.model_validate(assignment_fields(state.values))
        assignment = assignments_service.create_assignment(session, course, **body.model_dump())
    except (ValidationError, FormProblem, *FIXABLE) as exc:
        session.rollback()
        status = _fail(state, exc, ASSIGNMENT_LABELS)
        _blame_assignment_field(state, exc)
        access = Access(course, True)
        return _overview(request, session, viewer, access, new_assignment=state, status_code=status)
    notice = f"The assignment {assignment.title} ({assignment.slug}) was created."
    return back(settings, viewer, course_id, _base(course_id), notice)


def _blame_assignment_field(state: FormState, exc: Exception) -> None:
    """The field a service's message is about, so that the form marks it too."""
    text = str(exc)
    for name, says in (("slug", "slug"), ("catalog", "catalog"), ("title", "title")):
        if isinstance(exc, (InvalidInput, Conflict)) and says in text:
            state.invalid.add(name)
            return


def _course_assignment(
    session: Session, viewer: Caller, course_id: str, assignment_id: str, need: Need
) -> Assignment:
    assignment = assignments_service.authorize_assignment(session, viewer, assignment_id, need)
    if assignment.course_id != course_id:
        raise NotFound("no such assignment")
    return assignment


def _assignment_page(
    request: Request,
    session: Session,
    viewer: Caller,
    access: Access,
    assignment: Assignment,
    *,
    edit: FormState | None = None,
    webhook: FormState | None = None,
    status_code: int = 200,
) -> Response:
    webhooks = webhooks_service.live_webhooks(session, assignment.id) if access.can_manage else []
    context = {
        "assignment": assignment,
        "form": edit or assignment_form(assignment),
        "webhook_form": webhook or FormState("webhook"),
        "webhooks": webhooks,
        "catalogs": catalog_choices(),
        **_choices(),
    }
    return settings_page(
        request,
        viewer,
        access,
        "settings/assignment.html",
        context,
        tab="course",
        status_code=status_code,
    )


@router.get("/courses/{course_id}/settings/assignments/{assignment_id}")
def assignment_page(
    course_id: str, assignment_id: str, request: Request, session: SessionDep, viewer: ViewerDep
) -> Response:
    access = settings_access(session, viewer, course_id)
    assignment = _course_assignment(session, viewer, course_id, assignment_id, Need.staff)
    return _assignment_page(request, session, viewer, access, assignment)


@router.post("/courses/{course_id}/settings/assignments/{assignment_id}", dependencies=[CsrfChecked])
def change_assignment(
    course_id: str,
    assignment_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    viewer: ViewerDep,
    form: FormDep,
) -> Response:
    assignment = _course_assignment(session, viewer, course_id, assignment_id, Need.manage)
    state = FormState("assignment", _texts(form, ASSIGNMENT_FORM_FIELDS))
    try:
        body = AssignmentPatch.model_validate(assignment_fields(state.values))
        changed = assignments_service.change_assignment(
            session, assignment, body.model_dump(exclude_unset=True)
        )
        announce_grades(session, changed)  # as the API: a new due date or policy changes final grades
    except (ValidationError, FormProblem, *FIXABLE) as exc:
        session.rollback()
        status = _fail(state, exc, ASSIGNMENT_LABELS)
        _blame_assignment_field(state, exc)
        access = settings_access(session, viewer, course_id)
        return _assignment_page(request, session, viewer, access, assignment, edit=state, status_code=status)
    path = f"{_base(course_id)}/assignments/{assignment.id}"
    return back(settings, viewer, course_id, path, f"The settings of {changed.title} were saved.")


# ---- webhooks ------------------------------------------------------------------------------------------


@router.post("/courses/{course_id}/settings/assignments/{assignment_id}/webhooks", dependencies=[CsrfChecked])
def create_webhook(
    course_id: str,
    assignment_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    viewer: ViewerDep,
    form: FormDep,
) -> Response:
    assignment = _course_assignment(session, viewer, course_id, assignment_id, Need.manage)
    state = FormState("webhook", _texts(form, WEBHOOK_LABELS))
    try:
        body = WebhookCreate.model_validate({"url": state.value("url")})
        webhook = webhooks_service.create_webhook(
            session,
            assignment,
            url=body.url,
            created_by=viewer.key,
            allow_private=settings.webhook_allow_private,
        )
    except (ValidationError, *FIXABLE) as exc:
        session.rollback()
        status = _fail(state, exc, WEBHOOK_LABELS)
        state.invalid.add("url")
        access = settings_access(session, viewer, course_id)
        return _assignment_page(
            request, session, viewer, access, assignment, webhook=state, status_code=status
        )
    shown = ShownOnce(
        label=f"The secret of the webhook to {webhook.url}",
        value=webhook.secret,
        hint="Copy it into the receiver now: it is not shown again. Each delivery carries "
        "X-Grader-Signature: sha256=<HMAC-SHA256 of the body with this secret>.",
    )
    path = f"{_base(course_id)}/assignments/{assignment.id}#webhooks"
    return back(
        settings, viewer, course_id, path, f"The webhook to {webhook.url} was registered.", shown=shown
    )


def _course_webhook(
    session: Session, viewer: Caller, course_id: str, webhook_id: str
) -> tuple[Webhook, Assignment]:
    webhook = webhooks_service.authorize_webhook(session, viewer, webhook_id)
    assignment = session.get(Assignment, webhook.assignment_id)
    if assignment is None or assignment.course_id != course_id:
        raise NotFound("no such webhook")
    return webhook, assignment


@router.post("/courses/{course_id}/settings/webhooks/{webhook_id}/delete", dependencies=[CsrfChecked])
def delete_webhook(
    course_id: str, webhook_id: str, session: SessionDep, settings: SettingsDep, viewer: ViewerDep
) -> Response:
    webhook, assignment = _course_webhook(session, viewer, course_id, webhook_id)
    webhooks_service.delete_webhook(session, webhook)
    path = f"{_base(course_id)}/assignments/{assignment.id}#webhooks"
    return back(
        settings, viewer, course_id, path, f"The webhook to {webhook.url} was deleted: nothing more is sent."
    )


@dataclass(frozen=True)
class LoggedDelivery:
    logged: webhooks_service.Logged
    payload: dict[str, Any]
    body: str  # the JSON as sent, indented for reading


def _delivery_log_page(
    request: Request,
    session: Session,
    viewer: Caller,
    course_id: str,
    webhook: Webhook,
    assignment: Assignment,
    *,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    access = settings_access(session, viewer, course_id)
    deliveries = []
    for logged in webhooks_service.delivery_log(session, webhook, limit=DELIVERIES_SHOWN):
        payload = json.loads(logged.delivery.body)
        deliveries.append(LoggedDelivery(logged, payload, json.dumps(payload, indent=2, ensure_ascii=False)))
    context = {
        "webhook": webhook,
        "assignment": assignment,
        "deliveries": deliveries,
        "most": DELIVERIES_SHOWN,
        "errors": errors or [],
    }
    return settings_page(
        request,
        viewer,
        access,
        "settings/webhook.html",
        context,
        tab="course",
        status_code=status_code,
    )


@router.get("/courses/{course_id}/settings/webhooks/{webhook_id}")
def delivery_log(
    course_id: str, webhook_id: str, request: Request, session: SessionDep, viewer: ViewerDep
) -> Response:
    webhook, assignment = _course_webhook(session, viewer, course_id, webhook_id)
    return _delivery_log_page(request, session, viewer, course_id, webhook, assignment)


@router.post(
    "/courses/{course_id}/settings/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    dependencies=[CsrfChecked],
)
def redeliver(
    course_id: str,
    webhook_id: str,
    delivery_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    viewer: ViewerDep,
) -> Response:
    webhook, assignment = _course_webhook(session, viewer, course_id, webhook_id)
    try:
        webhooks_service.redeliver(session, webhook, delivery_id)
    except Conflict as exc:
        session.rollback()
        errors = [_sentence(str(exc))]
        return _delivery_log_page(
            request, session, viewer, course_id, webhook, assignment, errors=errors, status_code=409
        )
    path = f"{_base(course_id)}/webhooks/{webhook.id}"
    return back(
        settings,
        viewer,
        course_id,
        path,
        "The delivery is sent again within seconds: its attempt appears below.",
    )


# ---- members and rosters -------------------------------------------------------------------------------


def new_member_form() -> FormState:
    return FormState("member", {"role": Role.student.value})


def roster_form() -> FormState:
    return FormState("roster")


def _members_page(
    request: Request,
    session: Session,
    viewer: Caller,
    access: Access,
    *,
    member: FormState | None = None,
    roster: FormState | None = None,
    members_errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    members = courses_service.members_of(session, access.course)  # one query, whatever the course's size
    counts = {role.value: 0 for role in Role}
    for membership, _ in members:
        counts[membership.role.value] += 1
    context = {
        "members": members,
        "counts": counts,
        "roles": ROLE_NAMES,
        "member_form": member or new_member_form(),
        "roster_form": roster or roster_form(),
        "members_errors": members_errors or [],
        "most_roster_mib": MAX_ROSTER_BYTES // 1024**2,
    }
    return settings_page(
        request,
        viewer,
        access,
        "settings/members.html",
        context,
        tab="members",
        status_code=status_code,
    )


@router.get("/courses/{course_id}/settings/members")
def members_page(course_id: str, request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    return _members_page(request, session, viewer, settings_access(session, viewer, course_id))


@router.post("/courses/{course_id}/settings/members", dependencies=[CsrfChecked])
def put_member(
    course_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    viewer: ViewerDep,
    form: FormDep,
) -> Response:
    course = _manager(session, viewer, course_id)
    state = FormState("member", _texts(form, MEMBER_LABELS))
    try:
        body = MemberPut.model_validate(
            {
                "email": state.value("email"),
                "name": state.value("name"),
                "role": state.value("role"),
                "student_number": _optional(state.value("student_number")),
            }
        )
        member, user, created = courses_service.put_member(
            session,
            viewer,
            course,
            email=body.email,
            name=body.name,
            role=body.role,
            student_number=body.student_number,
        )
    except (ValidationError, *FIXABLE) as exc:
        session.rollback()
        status = _fail(state, exc, MEMBER_LABELS)
        if isinstance(exc, InvalidInput) and "email" in str(exc):
            state.invalid.add("email")
        elif isinstance(exc, InvalidInput) and "name" in str(exc):
            state.invalid.add("name")
        return _members_page(request, session, viewer, Access(course, True), member=state, status_code=status)
    role = ROLE_NAMES[member.role]
    notice = (
        f"{user.name} ({user.email}) was added as {_article(role)} {role}."
        if created
        else (f"{user.name} ({user.email}) is now {_article(role)} {role} of the course.")
    )
    return back(settings, viewer, course_id, f"{_base(course_id)}/members", notice)


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _refused_on_members_page(
    request: Request, session: Session, viewer: Caller, course: Course, exc: DomainError
) -> Response:
    """The members page again, with why an action on a member was refused, above the list."""
    session.rollback()
    errors = [_sentence(str(exc))]
    access = Access(course, True)
    return _members_page(request, session, viewer, access, members_errors=errors, status_code=exc.status_code)


@router.post("/courses/{course_id}/settings/members/{user_id}/invite", dependencies=[CsrfChecked])
def invite_member(
    course_id: str,
    user_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    viewer: ViewerDep,
) -> Response:
    """A one-time link that sets the member's password (as POST /api/v1/courses/{id}/members/{id}/invite)."""
    course = _manager(session, viewer, course_id)
    try:
        user = courses_service.invitable_member(session, viewer, course, user_id)
    except (Conflict, Forbidden) as exc:
        return _refused_on_members_page(request, session, viewer, course, exc)
    lifetime = timedelta(hours=settings.invite_hours)
    token = issue_invite(user, secret=settings.secret_key.get_secret_value(), lifetime=lifetime)
    shown = ShownOnce(
        label=f"The password link for {user.name} ({user.email})",
        value=invite_url(settings.public_url, token),
        hint=f"Give it to {user.name} only: whoever opens it sets the account's password. It works once, "
        f"until {when(invite_expires_at(token))}, and is not shown again (you can make a new one).",
    )
    notice = f"A password link for {user.email} was made."
    return back(settings, viewer, course_id, f"{_base(course_id)}/members", notice, shown=shown)


@router.post("/courses/{course_id}/settings/members/{user_id}/remove", dependencies=[CsrfChecked])
def remove_member(
    course_id: str,
    user_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    viewer: ViewerDep,
) -> Response:
    """Take the member out of the course (as DELETE /api/v1/courses/{id}/members/{id})."""
    course = _manager(session, viewer, course_id)
    try:
        user = courses_service.remove_member(session, viewer, course, user_id)
    except Conflict as exc:
        return _refused_on_members_page(request, session, viewer, course, exc)
    notice = (
        f"{user.name} ({user.email}) was removed from the course. Their submissions, grades and LMS ids "
        f"are kept: adding them back brings them back.{_left_behind(session, course, user)}"
    )
    return back(settings, viewer, course_id, f"{_base(course_id)}/members", notice)


def _left_behind(session: Session, course: Course, user: User) -> str:
    """What a removed member made for the course that keeps working without them (it is the course's: an
    LMS may depend on it), said so that the instructor can stop it."""
    tokens = session.scalar(
        select(func.count())
        .select_from(ApiToken)
        .where(
            ApiToken.course_id == course.id, ApiToken.created_by_id == user.id, ApiToken.revoked_at.is_(None)
        )
    )
    hooks = session.scalar(
        select(func.count())
        .select_from(Webhook)
        .join(Assignment, Assignment.id == Webhook.assignment_id)
        .where(
            Assignment.course_id == course.id,
            Webhook.created_by == f"user:{user.id}",
            Webhook.deleted_at.is_(None),
        )
    )
    made = [
        f"{count} {noun}{'s' if count != 1 else ''}"
        for count, noun in ((tokens or 0, "API token"), (hooks or 0, "webhook"))
        if count
    ]
    if not made:
        return ""
    return (
        f" They made {' and '.join(made)} of the course, which keep working: revoke or delete them "
        "(API tokens, and each assignment's page) if they should stop."
    )


@router.post("/courses/{course_id}/settings/roster", dependencies=[CsrfChecked])
def import_roster(
    course_id: str, request: Request, session: SessionDep, viewer: ViewerDep, form: FormDep
) -> Response:
    """The import's report, on this page (it is too long for a redirect's notice; importing the same file
    again changes nothing more, so a reload is harmless)."""
    course = _manager(session, viewer, course_id)
    access = Access(course, True)
    state = FormState("roster", checked=_ticked(form, ("dry_run", "partial")))
    upload = form.get("file")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise FormProblem("Roster file: choose the CSV file to import", "file")
        data = upload.file.read(MAX_ROSTER_BYTES + 1)
        result = courses_service.import_roster(
            session,
            course,
            viewer,
            data,
            dry_run="dry_run" in state.checked,
            partial="partial" in state.checked,
        )
    except (FormProblem, *FIXABLE) as exc:
        session.rollback()
        status = _fail(state, exc, {"file": "Roster file"})
        state.invalid.add("file")
        return _members_page(request, session, viewer, access, roster=state, status_code=status)
    refused = not result.applied and not result.dry_run
    if result.dry_run:
        notice = "Dry run: nothing was changed. This is what importing the file would do."
    elif result.applied:
        notice = (
            f"The roster was imported: {len(result.created)} added, {len(result.updated)} updated, "
            f"{len(result.unchanged)} unchanged."
        )
    else:
        notice = ""
    context = {
        "report": result,
        "roster_form": state,
        "roles": ROLE_NAMES,
        "refused": refused,
        "filename": upload.filename,
    }
    return settings_page(
        request,
        viewer,
        access,
        "settings/roster_report.html",
        context,
        tab="members",
        status_code=422 if refused else 200,
        notices=[notice] if notice else [],
        flash=False,
    )


# ---- API tokens ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenLine:
    token: ApiToken
    created_by: str


def tokens_of(session: Session, course: Course) -> list[TokenLine]:
    """The course's API tokens, newest first, with who made them (one query; never their values)."""
    rows = session.execute(
        select(ApiToken, User.email)
        .join(User, User.id == ApiToken.created_by_id)
        .where(ApiToken.course_id == course.id)
        .order_by(ApiToken.created_at.desc(), ApiToken.id)
    )
    return [TokenLine(token, email) for token, email in rows]


def new_token_form() -> FormState:
    return FormState("token")


def _tokens_page(
    request: Request,
    session: Session,
    viewer: Caller,
    access: Access,
    *,
    token: FormState | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "tokens": tokens_of(session, access.course),
        "token_form": token or new_token_form(),
        "scopes": SCOPE_NAMES,
    }
    return settings_page(
        request,
        viewer,
        access,
        "settings/tokens.html",
        context,
        tab="tokens",
        status_code=status_code,
    )


@router.get("/courses/{course_id}/settings/tokens")
def tokens_page(course_id: str, request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    return _tokens_page(request, session, viewer, settings_access(session, viewer, course_id))


@router.post("/courses/{course_id}/settings/tokens", dependencies=[CsrfChecked])
def create_token(
    course_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    viewer: ViewerDep,
    form: FormDep,
) -> Response:
    course = _manager(session, viewer, course_id)
    assert viewer.user is not None
    chosen = [scope for scope in form.getlist("scopes") if isinstance(scope, str)]
    state = FormState("token", _texts(form, ("name",)), checked=set(chosen))
    try:
        body = TokenCreate.model_validate({"name": state.value("name"), "scopes": chosen})
        token, secret = accounts_service.create_api_token(
            session,
            course_id=course.id,
            name=body.name,
            scopes=list(body.scopes),
            created_by_id=viewer.user.id,
        )
    except (ValidationError, *FIXABLE) as exc:
        session.rollback()
        status = _fail(state, exc, TOKEN_LABELS)
        return _tokens_page(request, session, viewer, Access(course, True), token=state, status_code=status)
    shown = ShownOnce(
        label=f"The API token {token.name}",
        value=secret,
        hint="Copy it into the integration now: it is stored only as its hash and is not shown again. "
        "It is sent as Authorization: Bearer <token>.",
    )
    notice = f"The API token {token.name} was created ({', '.join(token.scopes.split())})."
    return back(settings, viewer, course_id, f"{_base(course_id)}/tokens", notice, shown=shown)


@router.post("/courses/{course_id}/settings/tokens/{token_id}/revoke", dependencies=[CsrfChecked])
def revoke_token(
    course_id: str, token_id: str, session: SessionDep, settings: SettingsDep, viewer: ViewerDep
) -> Response:
    _manager(session, viewer, course_id)
    token = session.get(ApiToken, token_id)
    if token is None or token.course_id != course_id:
        raise NotFound("no such token")
    accounts_service.revoke_api_token(session, token)
    notice = f"The API token {token.name} was revoked: it is refused from now on."
    return back(settings, viewer, course_id, f"{_base(course_id)}/tokens", notice)


# ---- the addresses forms post to, opened as pages (a failed form's page, reloaded from the address bar) --


@router.get("/courses/{course_id}/settings/course")
@router.get("/courses/{course_id}/settings/assignments")
def to_overview(course_id: str) -> Response:
    return RedirectResponse(_base(course_id), status_code=303)


@router.get("/courses/{course_id}/settings/roster")
def to_members(course_id: str) -> Response:
    return RedirectResponse(f"{_base(course_id)}/members", status_code=303)


@router.get("/courses/{course_id}/settings/assignments/{assignment_id}/webhooks")
def to_assignment(course_id: str, assignment_id: str) -> Response:
    return RedirectResponse(f"{_base(course_id)}/assignments/{assignment_id}#webhooks", status_code=303)
