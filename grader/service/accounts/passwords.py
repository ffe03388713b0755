"""Password hashes: argon2 through pwdlib, with its recommended parameters."""

from __future__ import annotations

from pwdlib import PasswordHash

from grader.service.errors import InvalidInput

_HASHER = PasswordHash.recommended()
MIN_PASSWORD_LENGTH = 8


def check_new_password(password: str) -> None:
    """InvalidInput unless the password is long enough: the one rule for every password set."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    return _HASHER.verify(password, password_hash)
