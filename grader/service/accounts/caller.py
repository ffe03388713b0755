"""Who is calling: a signed-in person (an access token) or a course's integration (an API token)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.service.accounts.models import ApiToken, User
from grader.service.accounts.tokens import API_TOKEN_PREFIX, hash_api_token, read_access_claims, still_valid
from grader.service.errors import Unauthorized


@dataclass(frozen=True)
class Caller:
    """Exactly one of `user` and `token` is set."""

    user: User | None = None
    token: ApiToken | None = None

    @property
    def key(self) -> str:
        """Names the caller in submissions (an Idempotency-Key is unique per caller)."""
        return f"user:{self.user.id}" if self.user is not None else f"token:{self.token_row.id}"

    @property
    def is_admin(self) -> bool:
        return self.user is not None and self.user.is_admin

    @property
    def token_row(self) -> ApiToken:
        assert self.token is not None, "a person, not an API token"
        return self.token

    def has_scope(self, scope: str) -> bool:
        return self.token is not None and scope in self.token.scopes.split()


def authenticate(session: Session, bearer: str | None, *, secret: str) -> Caller:
    """The caller a bearer token names; Unauthorized (with a reason) for none, a bad one or a revoked one."""
    if not bearer:
        raise Unauthorized("sign in first: send Authorization: Bearer <token> (POST /api/v1/auth/token)")
    if bearer.startswith(API_TOKEN_PREFIX):
        token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_api_token(bearer)))
        if token is None:
            raise Unauthorized("this API token is not valid")
        if token.revoked_at is not None:
            raise Unauthorized("this API token was revoked; ask the course's instructor for a new one")
        return Caller(token=token)
    claims = read_access_claims(bearer, secret=secret)
    user = session.get(User, claims[0]) if claims is not None else None
    if user is None or claims is None or not still_valid(user, claims[1]):
        raise Unauthorized("the access token is invalid or expired: sign in again")
    return Caller(user=user)
