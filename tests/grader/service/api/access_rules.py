"""The rules of the access matrix (test_access_matrix.py): the roles, and shorthands for their expected
statuses. Each domain's rows live in a routes_<domain>.py beside it, a ROUTES dict of its own."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.grader.service.api.conftest import World

ROLES = (
    "anonymous",
    "revoked_token",
    "student",
    "owner",
    "ta",
    "instructor",
    "other_student",
    "other_instructor",
    "admin",
    "token:submissions:write",
    "token:submissions:read",
    "token:grades:read",
)
TOKENS = ("token:submissions:write", "token:submissions:read", "token:grades:read")
OUTSIDERS = ("other_student", "other_instructor")
UNAUTHENTICATED = {"anonymous": 401, "revoked_token": 401}


TOKEN_KEYWORDS = {role.replace(":", "_"): role for role in TOKENS}  # token_grades_read -> token:grades:read


def rule(**statuses: int | tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Every role's expected status; keywords name roles (`token_grades_read` for `token:grades:read`)
    or groups: `tokens`, `outsiders`, `everyone` (the rest). Unauthenticated callers get 401."""
    named = {TOKEN_KEYWORDS.get(key, key): value for key, value in statuses.items()}
    expected: dict[str, tuple[int, ...]] = {}
    for role in ROLES:
        group = "tokens" if role in TOKENS else "outsiders" if role in OUTSIDERS else "everyone"
        value = UNAUTHENTICATED.get(role) or named.get(role) or named.get(group) or named["everyone"]
        expected[role] = value if isinstance(value, tuple) else (value,)
    return expected


# Course rules: manage (its instructors, admins), staff (and its TAs; tokens by scope), view (members).
def manage(ok: int | tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    return rule(instructor=ok, admin=ok, outsiders=404, tokens=403, everyone=403)


def view(ok: int) -> dict[str, tuple[int, ...]]:
    return rule(outsiders=404, everyone=ok)


UPSERTED = (200, 201)

Request = Callable[[World, str], tuple[str, dict[str, Any]]]  # the URL and the request's keywords


def slug(role: str) -> str:
    return re.sub(r"[^a-z0-9]", "-", role)


Routes = dict[tuple[str, str], tuple[Request, dict[str, tuple[int, ...]]]]
