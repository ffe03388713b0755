"""One-time links that set a password, for people added without one (a roster import, `POST /members`).

The link holds a token signed with the secret key (a JWT like the access tokens, of its own type), so no
table keeps them. It names the user and a fingerprint of their password hash as it was when the link was
made (or of its absence): setting a password changes the hash, and with it every earlier link is dead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt
from sqlalchemy import update
from sqlalchemy.orm import Session

from grader.service.accounts.models import User
from grader.service.accounts.passwords import check_new_password, hash_password
from grader.service.db import utcnow
from grader.service.errors import Forbidden

_ALGORITHM = "HS256"
_TYPE = "invite"
_ASK_AGAIN = "ask your course's staff for a new link"

InviteProblem = Literal["bad", "expired", "used"]


class InviteRefused(Forbidden):
    """The link cannot set a password: `reason` says whether it is bad, expired or used already."""

    def __init__(self, message: str, reason: InviteProblem) -> None:
        super().__init__(message)
        self.reason: InviteProblem = reason


def invite_path(token: str) -> str:
    """Where the page that sets the password lives (the token is URL-safe: base64url and dots)."""
    return f"/invite/{token}"


def invite_url(base_url: str, token: str) -> str:
    """The full link: the service's public address (GRADER_PUBLIC_URL) and the invite's path."""
    return base_url.rstrip("/") + invite_path(token)


def issue_invite(user: User, *, secret: str, lifetime: timedelta, now: datetime | None = None) -> str:
    """A token that lets whoever holds it set `user`'s password once, until `now + lifetime`."""
    now = now or utcnow()
    claims = {
        "sub": user.id,
        "iat": now,
        "exp": now + lifetime,
        "typ": _TYPE,
        "pwd": _fingerprint(user.password_hash, secret=secret),
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def invite_expires_at(token: str) -> datetime:
    """When a token issue_invite made stops working, to the second (read unchecked: for showing only)."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return datetime.fromtimestamp(int(claims["exp"]), tz=UTC)


def invited_user(session: Session, token: str, *, secret: str, now: datetime | None = None) -> User:
    """The user whose password the link sets, if it still can; InviteRefused (saying why) if not.
    A page checks the link with this before it shows the form."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            # Expiry is checked below against `now`, so that tests can move the clock.
            options={"require": ["sub", "exp", "typ", "pwd"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise InviteRefused(
            "this link is not valid: check that you copied all of it, or " + _ASK_AGAIN, "bad"
        ) from exc
    subject, fingerprint, expires = claims.get("sub"), claims.get("pwd"), claims.get("exp")
    if claims.get("typ") != _TYPE or not isinstance(subject, str) or not isinstance(fingerprint, str):
        raise InviteRefused(
            "this link is not valid: check that you copied all of it, or " + _ASK_AGAIN, "bad"
        )
    if not isinstance(expires, int) or (now or utcnow()).timestamp() >= expires:
        raise InviteRefused("this link has expired: " + _ASK_AGAIN, "expired")
    user = session.get(User, subject)
    if user is None:
        raise InviteRefused("this link is not valid: its account no longer exists", "bad")
    if not hmac.compare_digest(fingerprint, _fingerprint(user.password_hash, secret=secret)):
        raise InviteRefused(
            "this link was used already: sign in with the password you set, or " + _ASK_AGAIN, "used"
        )
    return user


def redeem_invite(
    session: Session, token: str, new_password: str, *, secret: str, now: datetime | None = None
) -> User:
    """Set the password the link is for and return its user; the link (and every other one issued before)
    no longer works. InviteRefused for a bad, expired or used link, InvalidInput for a too-short password."""
    user = invited_user(session, token, secret=secret, now=now)
    check_new_password(new_password)
    old_hash, new_hash = user.password_hash, hash_password(new_password)
    # Only if the hash is still the one the link was made for: of two requests with one link, one wins.
    still = User.password_hash.is_(None) if old_hash is None else User.password_hash == old_hash
    changed = session.execute(
        update(User)
        .where(User.id == user.id, still)
        .values(password_hash=new_hash)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise InviteRefused(
            "this link was used already: sign in with the password you set, or " + _ASK_AGAIN, "used"
        )
    session.refresh(user)
    return user


def _fingerprint(password_hash: str | None, *, secret: str) -> str:
    """Names the password hash (or its absence) without revealing anything of it."""
    message = b"invite:" + (b"-" if password_hash is None else b"=" + password_hash.encode())
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
