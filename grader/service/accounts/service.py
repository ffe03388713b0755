"""Accounts: users (an email is unique without regard to case), signing in, and API tokens."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.service.accounts.models import ApiToken, User
from grader.service.accounts.passwords import check_new_password, hash_password, verify_password
from grader.service.accounts.tokens import new_api_token
from grader.service.db import utcnow
from grader.service.errors import Conflict, InvalidInput

_DUMMY_HASH = hash_password("not anyone's password")


def email_key(email: str) -> str:
    return email.strip().lower()


def find_user(session: Session, *, email: str) -> User | None:
    return session.scalar(select(User).where(User.email_key == email_key(email)))


def create_user(
    session: Session, *, email: str, name: str, password: str | None, is_admin: bool = False
) -> User:
    """A new user; Conflict if the email is taken (in any case), InvalidInput for a bad email or password."""
    email = email.strip()
    if "@" not in email or len(email) > 320 or any(c.isspace() for c in email):
        raise InvalidInput(f"{email!r} is not an email address")
    if not name.strip():
        raise InvalidInput("a user needs a name")
    if password is not None:
        check_new_password(password)
    if find_user(session, email=email) is not None:
        raise Conflict(f"a user with the email {email} exists already")
    user = User(
        email=email,
        email_key=email_key(email),
        name=name.strip(),
        password_hash=hash_password(password) if password is not None else None,
        is_admin=is_admin,
    )
    session.add(user)
    session.flush()
    return user


def sign_in(session: Session, *, email: str, password: str) -> User | None:
    """The user, if the password is theirs (a user added to a course without a password cannot sign in)."""
    user = find_user(session, email=email)
    if user is None or user.password_hash is None:
        verify_password(password, _DUMMY_HASH)  # the same time whether or not the account exists
        return None
    return user if verify_password(password, user.password_hash) else None


def create_api_token(
    session: Session, *, course_id: str, name: str, scopes: list[str], created_by_id: str
) -> tuple[ApiToken, str]:
    """A new token for the course and its secret value, which is stored only as its hash."""
    secret, token_hash = new_api_token()
    token = ApiToken(
        course_id=course_id,
        name=name,
        scopes=" ".join(sorted(set(scopes))),
        token_hash=token_hash,
        created_by_id=created_by_id,
    )
    session.add(token)
    session.flush()
    return token, secret


def revoke_api_token(session: Session, token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
