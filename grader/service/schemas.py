"""What every schema of the API shares: requests refuse unknown fields (a typo is an error, not ignored),
and moments come with their timezone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


def _in_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+00:01 is before the first moment there is
        raise ValueError("the moment is out of range") from exc


# A moment given with its timezone (a naive one is refused: whose midnight?), kept and answered in UTC.
UTCMoment = Annotated[AwareDatetime, AfterValidator(_in_utc)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Answer(BaseModel):
    """Read from the ORM object of the same fields: `CourseOut.model_validate(course)`."""

    model_config = ConfigDict(from_attributes=True)


class Problem(BaseModel):
    """Every error the API answers: a sentence a person can act on."""

    detail: str = Field(examples=["no such assignment"])


ERROR_MEANINGS = {
    401: "no valid credentials (WWW-Authenticate: Bearer)",
    403: "the caller may see this but not do it",
    404: "no such object, or one the caller may not see",
    409: "the object's state does not allow it (yet)",
    413: "the upload is too large",
    422: "the request is invalid: what is wrong, field by field",
    429: "too many: Retry-After says when to try again",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error answers of a route, for the OpenAPI schema: `responses=errors(404, 409)`."""
    return {code: {"model": Problem, "description": ERROR_MEANINGS[code]} for code in codes}
