"""What every schema of the API shares: requests refuse unknown fields (a typo is an error, not ignored),
and moments come with their timezone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict


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
