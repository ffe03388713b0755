from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from grader.service.schemas import Answer, Request
from grader.service.webhooks.addresses import MAX_URL_LENGTH
from grader.service.webhooks.models import DeliveryStatus


class WebhookCreate(Request):
    url: str = Field(
        max_length=MAX_URL_LENGTH,
        examples=["https://lms.example.edu/grader-hooks"],
        description="http(s), without credentials; a public address unless GRADER_WEBHOOK_ALLOW_PRIVATE",
    )


class WebhookCreated(BaseModel):
    id: str
    secret: str = Field(
        description="shown this once: the key of X-Grader-Signature (sha256=HMAC-SHA256 of the raw body)"
    )


class WebhookOut(Answer):
    """A webhook, without its secret."""

    id: str
    assignment_id: str
    url: str
    created_at: datetime


class AttemptOut(Answer):
    number: int
    started_at: datetime
    seconds: float
    status_code: int | None = Field(description="the receiver's HTTP status; null: no answer (see error)")
    error: str | None
    response: str | None = Field(description="the first KiB of the receiver's answer")


class DeliveryOut(BaseModel):
    id: str = Field(description="also the body's delivery_id and the X-Grader-Delivery header")
    webhook_id: str
    event: str
    status: DeliveryStatus = Field(description="pending (waiting for its next attempt), delivered, failed")
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="when pending: not before then")
    finished_at: datetime | None
    attempts: list[AttemptOut]
    payload: dict[str, Any] = Field(description="the JSON body sent (and signed)")
