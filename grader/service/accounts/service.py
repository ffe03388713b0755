"""Accounts: creating users; an email is unique without regard to case."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.service.accounts.models import User
from grader.service.accounts.passwords import MIN_PASSWORD_LENGTH, hash_password
from grader.service.errors import Conflict, InvalidInput


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
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
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
