"""Domain errors, each with the HTTP status the API answers it with and a message a person can act on."""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400


class InvalidInput(DomainError):
    status_code = 422


class Unauthorized(DomainError):
    """No valid credentials: the API answers with WWW-Authenticate: Bearer."""

    status_code = 401


class Forbidden(DomainError):
    """The caller may see the object but not do this to it (objects it may not see are NotFound)."""

    status_code = 403


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class TooLarge(DomainError):
    status_code = 413


class LimitReached(DomainError):
    """No more submissions allowed for this assignment."""

    status_code = 409


class LateRefused(DomainError):
    """Past the due date (or the late days) the assignment's late policy allows."""

    status_code = 403


class TooSoon(DomainError):
    """Again too soon (a submission, a login after failures): `retry_after` seconds to wait (Retry-After)."""

    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
