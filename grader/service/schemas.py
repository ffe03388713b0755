"""What every schema of the API shares: requests refuse unknown fields (a typo is an error, not ignored),
and moments come with their timezone."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict

# A moment given with its timezone (a naive one is refused: whose midnight?), kept and answered in UTC.
UTCMoment = Annotated[AwareDatetime, AfterValidator(lambda moment: moment.astimezone(UTC))]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Answer(BaseModel):
    pass
