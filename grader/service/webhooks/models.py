"""Webhooks: an assignment's subscribers to its grade changes, and an outbox of deliveries.

A delivery is written in the same transaction as the grade change it announces (so a crash loses none)
and sent later by the delivery loop; every attempt is kept.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from grader.service.db import Base, UTCDateTime, created_column, id_column, utcnow


class DeliveryStatus(enum.StrEnum):
    pending = "pending"  # waiting for its (next) attempt
    delivered = "delivered"  # a 2xx answer
    failed = "failed"  # retried for a day without a 2xx answer: given up


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[str] = id_column()
    assignment_id: Mapped[str] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))  # the HMAC key: kept as it is, shown once
    created_by: Mapped[str] = mapped_column(String(40))  # "user:<id>" or "token:<id>"
    created_at: Mapped[datetime] = created_column()
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[str] = id_column()
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(50))
    body: Mapped[str] = mapped_column(Text)  # the exact JSON sent (and signed)
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(DeliveryStatus, name="delivery_status", native_enum=False, length=20),
        default=DeliveryStatus.pending,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_column()
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[str] = id_column()
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = created_column()
    seconds: Mapped[float] = mapped_column(Float)
    status_code: Mapped[int | None] = mapped_column(Integer)  # None: no answer (refused, timed out)
    error: Mapped[str | None] = mapped_column(Text)
    response: Mapped[str | None] = mapped_column(Text)  # the first KiB of the answer


class AnnouncedGrade(Base):
    """The last final grade announced for a student of an assignment: a change from it is an event."""

    __tablename__ = "announced_grades"

    assignment_id: Mapped[str] = mapped_column(
        ForeignKey("assignments.id", ondelete="CASCADE"), primary_key=True
    )
    student_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    counting_submission_id: Mapped[str | None] = mapped_column(String(32))
    score: Mapped[float | None] = mapped_column(Float)
    final_score: Mapped[float | None] = mapped_column(Float)
    late_days: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = created_column()
