"""Logging in and out: /login, /logout. The same sign-in, throttle and messages as the API's token route."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from grader.service.accounts import service
from grader.service.accounts.invites import InviteRefused, invited_user, redeem_invite
from grader.service.accounts.throttle import LoginThrottle
from grader.service.db import utcnow
from grader.service.deps import SessionDep, SettingsDep
from grader.service.errors import InvalidInput, TooSoon
from grader.service.web.browser import CsrfChecked, MaybeViewerDep, end_session, safe_next, start_session
from grader.service.web.errors import page_error
from grader.service.web.rendering import render

router = APIRouter(include_in_schema=False)


@router.get("/login")
def login_page(request: Request, viewer: MaybeViewerDep, next: str | None = None) -> Response:
    if viewer is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"next": safe_next(next), "email": ""})


@router.post("/login", dependencies=[CsrfChecked])
def log_in(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    throttle: LoginThrottle = request.app.state.login_throttle  # shared with POST /api/v1/auth/token
    address = request.client.host if request.client is not None else "?"
    key = service.email_key(email)
    try:
        throttle.check(key, address)
    except TooSoon as exc:
        return page_error(request, 429, str(exc), retry_after=exc.retry_after)
    user = service.sign_in(session, email=email, password=password) if email and password else None
    if user is None:
        throttle.failed(key, address)
        context = {"next": safe_next(next), "email": email, "error": "Wrong email or password."}
        return render(request, "login.html", context, status_code=401)
    throttle.succeeded(key, address)
    response = RedirectResponse(safe_next(next), status_code=303)
    start_session(response, user, settings)
    return response


@router.post("/logout", dependencies=[CsrfChecked])
def log_out(settings: SettingsDep, viewer: MaybeViewerDep) -> Response:
    """Ends the person's sessions, here and on every other device (a lab machine left signed in)."""
    if viewer is not None and viewer.user is not None:
        viewer.user.sessions_valid_after = utcnow()
    response = RedirectResponse("/login", status_code=303)
    end_session(response, settings)
    return response


NO_REFERRER = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}  # the token is in the URL


@router.get("/invite/{token}")
def invite_page(token: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """A one-time link from staff (or `grader users invite`): the form that sets the password."""
    try:
        user = invited_user(session, token, secret=settings.secret_key.get_secret_value())
    except InviteRefused as exc:
        return page_error(request, 403, str(exc))
    return render(request, "set_password.html", {"user": user, "token": token}, headers=NO_REFERRER)


@router.post("/invite/{token}", dependencies=[CsrfChecked])
def set_password(
    token: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    password: Annotated[str, Form(max_length=1000)] = "",
    again: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    secret = settings.secret_key.get_secret_value()
    try:
        user = invited_user(session, token, secret=secret)
        if password != again:
            raise InvalidInput("the two passwords differ: type the same one twice")
        redeem_invite(session, token, password, secret=secret)
        user.sessions_valid_after = utcnow()  # a new password ends the sessions before it
    except InviteRefused as exc:
        return page_error(request, 403, str(exc))
    except InvalidInput as exc:
        context = {"user": user, "token": token, "error": str(exc)}
        return render(request, "set_password.html", context, status_code=422, headers=NO_REFERRER)
    response = RedirectResponse("/", status_code=303)
    start_session(response, user, settings)
    return response
