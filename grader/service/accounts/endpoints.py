"""Signing in, the caller, and a course's API tokens: /api/v1/auth/token, /api/v1/users/me, tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from grader.service.accounts import service
from grader.service.accounts.models import ApiToken
from grader.service.accounts.schemas import AccessToken, Me, TokenCreate, TokenCreated
from grader.service.accounts.throttle import LoginThrottle
from grader.service.accounts.tokens import issue_access_token
from grader.service.courses.access import Need, authorize_course
from grader.service.deps import CallerDep, SessionDep, SettingsDep
from grader.service.errors import NotFound, Unauthorized
from grader.service.schemas import errors

router = APIRouter(prefix="/api/v1", tags=["accounts"], responses=errors(401, 403, 404, 422))


@router.post("/auth/token", responses=errors(429))
def sign_in(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
) -> AccessToken:
    """OAuth2 password flow: `username` (the email) and `password` give a bearer token; repeated
    failures are throttled (429 with Retry-After)."""
    throttle: LoginThrottle = request.app.state.login_throttle
    address = request.client.host if request.client is not None else "?"
    key = service.email_key(form.username)
    throttle.check(key, address)
    user = service.sign_in(session, email=form.username, password=form.password)
    if user is None:
        throttle.failed(key, address)
        raise Unauthorized("wrong email or password")
    throttle.succeeded(key, address)
    lifetime = timedelta(minutes=settings.access_token_minutes)
    secret = settings.secret_key.get_secret_value()
    return AccessToken(access_token=issue_access_token(user.id, secret=secret, lifetime=lifetime))


@router.get("/users/me")
def me(caller: CallerDep) -> Me:
    return Me.of(caller)


@router.post("/courses/{course_id}/tokens", status_code=status.HTTP_201_CREATED)
def create_token(course_id: str, body: TokenCreate, session: SessionDep, caller: CallerDep) -> TokenCreated:
    """An API token for the course's integrations (its instructors); the token is shown this once."""
    course = authorize_course(session, caller, course_id, Need.manage)
    assert caller.user is not None  # manage is closed to tokens
    token, secret = service.create_api_token(
        session, course_id=course.id, name=body.name, scopes=list(body.scopes), created_by_id=caller.user.id
    )
    return TokenCreated(
        id=token.id,
        token=secret,
        name=token.name,
        course_id=token.course_id,
        scopes=token.scopes.split(),
        created_at=token.created_at,
    )


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: str, session: SessionDep, caller: CallerDep) -> Response:
    """Revoke a token (its course's instructors): it is refused from the next request on."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound("no such token")
    try:
        authorize_course(session, caller, token.course_id, Need.manage)
    except NotFound as exc:
        raise NotFound("no such token") from exc
    service.revoke_api_token(session, token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
