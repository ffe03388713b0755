"""Domain errors, each with the HTTP status the API answers it with and a message a person can act on."""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400


class InvalidInput(DomainError):
    status_code = 422


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class LimitReached(DomainError):
    """No more submissions allowed for this assignment."""

    status_code = 409


class TooSoon(DomainError):
    """Submitting again too soon: `retry_after` seconds to wait (the Retry-After header)."""

    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
