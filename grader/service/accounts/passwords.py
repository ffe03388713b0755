"""Password hashes: argon2 through pwdlib, with its recommended parameters."""

from __future__ import annotations

from pwdlib import PasswordHash

_HASHER = PasswordHash.recommended()
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    return _HASHER.verify(password, password_hash)
