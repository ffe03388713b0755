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
