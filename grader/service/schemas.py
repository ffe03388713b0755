"""What every schema of the API shares: requests refuse unknown fields (a typo is an error, not ignored)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Answer(BaseModel):
    pass
