from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from grader.service.accounts.caller import Caller
from grader.service.accounts.tokens import SCOPES
from grader.service.schemas import Answer, Request

Scope = Literal["submissions:write", "submissions:read", "grades:read"]
assert set(SCOPES) == set(Scope.__args__)  # type: ignore[attr-defined]


class AccessToken(Answer):
    access_token: str
    token_type: Literal["bearer"] = "bearer"


class Me(Answer):
    """A person, or (kind "token") the course's API token that is calling."""

    kind: Literal["user", "token"]
    id: str
    email: str | None = None
    name: str
    is_admin: bool = False
    course_id: str | None = None
    scopes: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, caller: Caller) -> Me:
        if caller.user is not None:
            user = caller.user
            return cls(kind="user", id=user.id, email=user.email, name=user.name, is_admin=user.is_admin)
        token = caller.token_row
        return cls(
            kind="token", id=token.id, name=token.name, course_id=token.course_id, scopes=token.scopes.split()
        )


class TokenCreate(Request):
    name: str = Field(min_length=1, max_length=200, examples=["Canvas"])
    scopes: list[Scope] = Field(min_length=1, examples=[["submissions:write", "submissions:read"]])


class TokenCreated(Answer):
    id: str
    token: str = Field(description="shown this once: store it now")
    name: str
    course_id: str
    scopes: list[str]
    created_at: datetime
