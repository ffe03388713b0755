"""The two kinds of bearer token: a person's access token (a JWT signed with the secret key, from the
OAuth2 password flow) and a course's API token (random, shown once, stored as its sha256)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import jwt

from grader.service.accounts.models import User
from grader.service.db import utcnow

API_TOKEN_PREFIX = "gt_"  # tells the two kinds apart without trying to decode either
SCOPES = ("submissions:write", "submissions:read", "grades:read")
_ALGORITHM = "HS256"


def issue_access_token(user_id: str, *, secret: str, lifetime: timedelta, now: datetime | None = None) -> str:
    now = now or utcnow()
    # jti: two sign-ins within one second still get two tokens (a browser's session is new at each login);
    # auth: the moment in microseconds (iat has whole seconds), to compare with a user's
    # sessions_valid_after: a login just after a logout stays valid
    claims = {
        "sub": user_id,
        "iat": now,
        "exp": now + lifetime,
        "typ": "access",
        "jti": secrets.token_urlsafe(9),
        "auth": int(now.timestamp() * 1_000_000),
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def read_access_token(token: str, *, secret: str) -> str | None:
    """The user id an access token was issued to; None if it is forged, damaged or expired."""
    claims = read_access_claims(token, secret=secret)
    return claims[0] if claims is not None else None


def read_access_claims(token: str, *, secret: str) -> tuple[str, datetime | None] | None:
    """The user id and the moment of issue of an access token; None if forged, damaged or expired."""
    try:
        claims = jwt.decode(token, secret, algorithms=[_ALGORITHM], options={"require": ["sub", "exp"]})
    except jwt.PyJWTError:
        return None
    subject = claims.get("sub")
    if not isinstance(subject, str) or claims.get("typ") != "access":
        return None
    issued = claims.get("auth")
    moment = datetime.fromtimestamp(issued / 1_000_000, UTC) if isinstance(issued, int) else None
    return subject, moment


def still_valid(user: User, issued_at: datetime | None) -> bool:
    """A token issued before the user's sessions were ended (a logout, a new password) is no more."""
    ended = user.sessions_valid_after
    return ended is None or (issued_at is not None and issued_at > ended)


def new_api_token() -> tuple[str, str]:
    """A new API token and the hash it is stored under."""
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_api_token(token)


def hash_api_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()
