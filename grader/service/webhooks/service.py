"""Webhooks: registered by a course's instructors on an assignment, told of every change of a student's
final grade. A change writes one delivery per live webhook into the outbox, in the transaction that
changed the grade (so a crash loses none); the delivery loop (delivery.py) sends them."""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from grader.service.accounts.caller import Caller
from grader.service.assignments.models import Assignment
from grader.service.assignments.service import authorize_assignment
from grader.service.courses.access import Need
from grader.service.db import new_id, utcnow
from grader.service.errors import Conflict, InvalidInput, NotFound
from grader.service.grades.service import GradeRow
from grader.service.webhooks import addresses
from grader.service.webhooks.models import (
    AnnouncedGrade,
    DeliveryStatus,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)

GRADE_UPDATED = "grade.updated"
MOST_WEBHOOKS = 20  # per assignment: each grade change costs one delivery per webhook
SECRET_PREFIX = "whsec_"


# Registering, listing, deleting.


def create_webhook(
    session: Session, assignment: Assignment, *, url: str, created_by: str, allow_private: bool
) -> Webhook:
    """A webhook of the assignment to `url`, checked (an http(s) URL whose host is, or resolves only to,
    addresses a webhook may reach), with a new secret."""
    try:
        target = addresses.parse_url(url)
        addresses.checked_addresses(target, allow_private=allow_private)
    except (ValueError, addresses.Refused, addresses.Unresolvable) as exc:
        raise InvalidInput(f"url: {exc}") from None
    if len(live_webhooks(session, assignment.id)) >= MOST_WEBHOOKS:
        raise Conflict(f"an assignment has at most {MOST_WEBHOOKS} webhooks: delete one first")
    webhook = Webhook(
        assignment_id=assignment.id,
        url=url,
        secret=SECRET_PREFIX + secrets.token_urlsafe(32),
        created_by=created_by,
    )
    session.add(webhook)
    session.flush()
    return webhook


def live_webhooks(session: Session, assignment_id: str) -> list[Webhook]:
    """The assignment's webhooks not deleted, oldest first."""
    query = select(Webhook).where(Webhook.assignment_id == assignment_id, Webhook.deleted_at.is_(None))
    return list(session.scalars(query.order_by(Webhook.created_at, Webhook.id)))


def authorize_webhook(session: Session, caller: Caller, webhook_id: str) -> Webhook:
    """The webhook (not deleted), if the caller manages its assignment's course (NotFound otherwise, as
    for assignments; Forbidden for the course's other people and its API tokens)."""
    webhook = session.get(Webhook, webhook_id)
    if webhook is None or webhook.deleted_at is not None:
        raise NotFound("no such webhook")
    try:
        authorize_assignment(session, caller, webhook.assignment_id, Need.manage)
    except NotFound as exc:
        raise NotFound("no such webhook") from exc
    return webhook


def delete_webhook(session: Session, webhook: Webhook) -> None:
    """The webhook stops; its deliveries still waiting are given up (their log stays with them)."""
    now = utcnow()
    webhook.deleted_at = now
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook.id, WebhookDelivery.status == DeliveryStatus.pending)
        .values(status=DeliveryStatus.failed, finished_at=now, lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    session.flush()


# The delivery log and redelivery.


@dataclass(frozen=True)
class Logged:
    delivery: WebhookDelivery
    attempts: list[WebhookAttempt]


def delivery_log(session: Session, webhook: Webhook, *, limit: int) -> list[Logged]:
    """The webhook's latest deliveries, newest first, each with its attempts in order."""
    newest = (
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook.id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        .limit(limit)
    )
    return _with_attempts(session, list(session.scalars(newest)))


def _with_attempts(session: Session, deliveries: list[WebhookDelivery]) -> list[Logged]:
    attempts: dict[str, list[WebhookAttempt]] = {delivery.id: [] for delivery in deliveries}
    if deliveries:
        query = (
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(list(attempts)))
            .order_by(WebhookAttempt.number, WebhookAttempt.started_at)
        )
        for attempt in session.scalars(query):
            attempts[attempt.delivery_id].append(attempt)
    return [Logged(delivery, attempts[delivery.id]) for delivery in deliveries]


def redeliver(session: Session, webhook: Webhook, delivery_id: str, *, now: datetime | None = None) -> Logged:
    """Send the delivery again, the same body, as soon as a delivery loop is free: one more attempt
    (retried only within the day after the delivery was written). Conflict while an attempt is under way."""
    now = now or utcnow()
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.webhook_id != webhook.id:
        raise NotFound("no such delivery of this webhook")
    in_flight = Conflict("this delivery is being attempted right now: its outcome is in the log in seconds")
    if delivery.lease_expires_at is not None and delivery.lease_expires_at >= now:
        raise in_flight
    changed = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery.id, WebhookDelivery.attempts == delivery.attempts)
        .where((WebhookDelivery.lease_expires_at.is_(None)) | (WebhookDelivery.lease_expires_at < now))
        .values(status=DeliveryStatus.pending, next_attempt_at=now, finished_at=None)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise in_flight  # a delivery loop claimed it between our read and our write
    session.refresh(delivery)
    return _with_attempts(session, [delivery])[0]


# Announcing grade changes.


def _moment(value: datetime | None) -> str | None:
    """ISO 8601 in UTC, as the API writes moments: 2026-03-01T08:00:00.123456Z."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def grade_event(delivery_id: str, assignment: Assignment, row: GradeRow) -> dict[str, Any]:
    """The body of a grade.updated delivery: the student's final grade as it now is."""
    return {
        "event": GRADE_UPDATED,
        "delivery_id": delivery_id,
        "course_id": assignment.course_id,
        "assignment_id": assignment.id,
        "submission_id": row.counting_submission_id,
        "student": {"email": row.email, "student_number": row.student_number, "lms_id": row.lms_id},
        "score": row.score,
        "max_score": row.max_score,
        "final_score": row.final_score,
        "late_days": row.late_days,
        "graded_at": _moment(row.graded_at),
    }


def hold_announcements(
    session: Session, assignment_id: str, student_ids: Collection[str]
) -> dict[str, AnnouncedGrade]:
    """The students' last announced grades, locked for the rest of the caller's transaction (a row
    with nothing announced is made for those without one). On PostgreSQL two transactions changing one
    student's grade wait for each other here; for an exact announcement under that race, call this
    before computing the rows (on SQLite every writing transaction is alone already)."""
    ids = sorted(set(student_ids))
    if not ids:
        return {}
    now = utcnow()
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(AnnouncedGrade)
        .values(
            [
                {"assignment_id": assignment_id, "student_id": student_id, "late_days": 0, "updated_at": now}
                for student_id in ids
            ]
        )
        .on_conflict_do_nothing()
    )
    query = (
        select(AnnouncedGrade)
        .where(AnnouncedGrade.assignment_id == assignment_id, AnnouncedGrade.student_id.in_(ids))
        .order_by(AnnouncedGrade.student_id)
        .execution_options(populate_existing=True)
    )
    if dialect == "postgresql":
        query = query.with_for_update()
    return {announced.student_id: announced for announced in session.scalars(query)}


def _announced(grade: AnnouncedGrade) -> tuple[object, ...]:
    return (grade.counting_submission_id, grade.score, grade.final_score, grade.late_days)


def _current(row: GradeRow) -> tuple[object, ...]:
    return (row.counting_submission_id, row.score, row.final_score, row.late_days)


def announce_changes(session: Session, assignment: Assignment, rows: Sequence[GradeRow]) -> int:
    """Write a grade.updated delivery to each live webhook of the assignment for every row whose final
    grade (counting submission, score, final score, late days) differs from the one last announced, and
    remember it as announced; how many deliveries were written. Inside the caller's transaction: it
    never commits. An assignment without webhooks announces nothing and remembers nothing, so that a
    webhook registered later hears each student's next grade."""
    webhooks = live_webhooks(session, assignment.id)
    if not webhooks or not rows:
        return 0
    announced = hold_announcements(session, assignment.id, [row.student_id for row in rows])
    now, written = utcnow(), 0
    for row in rows:
        last = announced[row.student_id]
        if _announced(last) == _current(row):
            continue  # unchanged; for a student never graded, nothing to announce either
        last.counting_submission_id, last.score = row.counting_submission_id, row.score
        last.final_score, last.late_days, last.updated_at = row.final_score, row.late_days, now
        for webhook in webhooks:
            delivery_id = new_id()
            body = json.dumps(grade_event(delivery_id, assignment, row), separators=(",", ":"))
            session.add(
                WebhookDelivery(
                    id=delivery_id,
                    webhook_id=webhook.id,
                    event=GRADE_UPDATED,
                    body=body,
                    status=DeliveryStatus.pending,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            written += 1
    session.flush()
    return written
