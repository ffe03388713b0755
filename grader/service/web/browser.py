"""A browser's session and its CSRF protection.

The session is a signed, expiring access token (the API's own, accounts/tokens.py) in an HttpOnly,
SameSite=Lax cookie, Secure in production, issued anew at every login. Forms carry a CSRF token that
must equal the one in the browser's CSRF cookie (a double submit), and that token is signed with the
secret key together with the browser's session, so that a token taken from another browser and planted
as this one's cookie (from a sibling subdomain, say) does not match.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Response
from sqlalchemy.orm import Session

from grader.service.accounts.caller import Caller
from grader.service.accounts.models import User
from grader.service.accounts.tokens import issue_access_token, read_access_claims, still_valid
from grader.service.deps import SessionDep, SettingsDep
from grader.service.errors import DomainError
from grader.settings import Settings

SESSION_COOKIE = "grader_session"
CSRF_COOKIE = "grader_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class LoginRequired(DomainError):
    """A page that needs a signed-in person: the browser is sent to the login page, and back after."""

    status_code = 303

    def __init__(self, next_path: str) -> None:
        super().__init__("sign in first")
        self.next_path = next_path


class CsrfRefused(DomainError):
    status_code = 403


def secure_cookies(settings: Settings) -> bool:
    """Secure cookies in production, and wherever the service is reached over https."""
    return settings.env == "production" or settings.public_url.startswith("https://")


_secure = secure_cookies


def start_session(response: Response, user: User, settings: Settings) -> None:
    """A new session token at every login (never the one the browser had before)."""
    lifetime = timedelta(minutes=settings.access_token_minutes)
    token = issue_access_token(user.id, secret=settings.secret_key.get_secret_value(), lifetime=lifetime)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=_secure(settings),
        path="/",
    )


def end_session(response: Response, settings: Settings) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(settings))


def session_user(request: Request, session: Session, settings: Settings) -> User | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    claims = read_access_claims(token, secret=settings.secret_key.get_secret_value())
    user = session.get(User, claims[0]) if claims is not None else None
    return user if user is not None and claims is not None and still_valid(user, claims[1]) else None


def viewer_from_request(request: Request, session: Session) -> Caller | None:
    settings: Settings = request.app.state.settings
    user = session_user(request, session, settings)
    return Caller(user=user) if user is not None else None


def maybe_viewer(request: Request, session: SessionDep, settings: SettingsDep) -> Caller | None:
    user = session_user(request, session, settings)
    return Caller(user=user) if user is not None else None


def viewer(request: Request, session: SessionDep, settings: SettingsDep) -> Caller:
    """The signed-in person, as the domain services know callers; LoginRequired otherwise."""
    user = session_user(request, session, settings)
    if user is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path)
    return Caller(user=user)


ViewerDep = Annotated[Caller, Depends(viewer, scope="function")]
MaybeViewerDep = Annotated[Caller | None, Depends(maybe_viewer, scope="function")]


def login_url(next_path: str) -> str:
    return "/login" if next_path in ("", "/") else f"/login?next={quote(next_path, safe='')}"


def safe_next(next_path: str | None) -> str:
    """Where to go after login: a path on this site only (never //evil.example or a full URL)."""
    if not next_path or not next_path.startswith("/") or next_path.startswith("//") or "\\" in next_path:
        return "/"
    return next_path


# CSRF


def _binding(request: Request) -> str:
    """What a CSRF token is bound to: the browser's session (its cookie's hash), or no session. A token
    from another browser, planted as this one's cookie, then never matches."""
    session = request.cookies.get(SESSION_COOKIE, "")
    return hashlib.sha256(session.encode()).hexdigest() if session else ""


def _sign(nonce: str, binding: str, secret: str) -> str:
    message = f"csrf:{nonce}:{binding}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def _new_csrf_token(binding: str, settings: Settings) -> str:
    nonce = secrets.token_urlsafe(18)
    return f"{nonce}.{_sign(nonce, binding, settings.secret_key.get_secret_value())}"


def _well_signed(token: str, binding: str, settings: Settings) -> bool:
    nonce, _, signature = token.partition(".")
    expected = _sign(nonce, binding, settings.secret_key.get_secret_value())
    return bool(nonce) and hmac.compare_digest(signature, expected)


def csrf_token_for(request: Request, settings: Settings) -> str:
    """The browser's CSRF token: its cookie's when that is well signed for this session, a new one
    otherwise (after a login, say; the page that renders it sets the cookie: see rendering.render)."""
    current, binding = request.cookies.get(CSRF_COOKIE, ""), _binding(request)
    return (
        current
        if current and _well_signed(current, binding, settings)
        else _new_csrf_token(binding, settings)
    )


def set_csrf_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="lax", secure=_secure(settings), path="/")


async def verify_csrf(request: Request, settings: SettingsDep) -> None:
    """Every state-changing request of the pages: the form's field (or the header, for fetch) must be the
    cookie's token."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else ""
    well_signed = bool(cookie) and _well_signed(cookie, _binding(request), settings)
    if not well_signed or not hmac.compare_digest(sent, cookie):
        raise CsrfRefused(
            "this form has expired or did not come from this site: reload the page and try again"
        )


CsrfChecked = Depends(verify_csrf)
