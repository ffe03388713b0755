"""Webhooks: /api/v1/assignments/{id}/webhooks, /api/v1/webhooks/{id}, its deliveries and redelivery.

Each route is for the course's instructors (and admins): a webhook's URL and delivery log carry every
student's grades, and its secret signs them."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from grader.service.assignments.service import authorize_assignment
from grader.service.courses.access import Need
from grader.service.deps import CallerDep, SessionDep, SettingsDep
from grader.service.schemas import errors
from grader.service.webhooks import service
from grader.service.webhooks.models import DeliveryStatus
from grader.service.webhooks.schemas import (
    AttemptOut,
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
)

router = APIRouter(prefix="/api/v1", tags=["webhooks"], responses=errors(401, 403, 404, 422))


@router.post(
    "/assignments/{assignment_id}/webhooks",
    status_code=status.HTTP_201_CREATED,
    responses=errors(409),
)
def create_webhook(
    assignment_id: str, body: WebhookCreate, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> WebhookCreated:
    """Have every change of a student's final grade POSTed to `url` as a signed grade.updated event
    (the course's instructors). The secret is shown this once."""
    assignment = authorize_assignment(session, caller, assignment_id, Need.manage)
    webhook = service.create_webhook(
        session,
        assignment,
        url=body.url,
        created_by=caller.key,
        allow_private=settings.webhook_allow_private,
    )
    return WebhookCreated(id=webhook.id, secret=webhook.secret)


@router.get("/assignments/{assignment_id}/webhooks")
def list_webhooks(assignment_id: str, session: SessionDep, caller: CallerDep) -> list[WebhookOut]:
    """The assignment's webhooks, without their secrets (the course's instructors)."""
    assignment = authorize_assignment(session, caller, assignment_id, Need.manage)
    return [WebhookOut.model_validate(webhook) for webhook in service.live_webhooks(session, assignment.id)]


@router.delete("/webhooks/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(webhook_id: str, session: SessionDep, caller: CallerDep) -> Response:
    """Stop the webhook: nothing more is sent, its waiting deliveries are given up."""
    service.delete_webhook(session, service.authorize_webhook(session, caller, webhook_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/webhooks/{webhook_id}/deliveries")
def list_deliveries(
    webhook_id: str,
    session: SessionDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=500, description="the newest so many")] = 100,
) -> list[DeliveryOut]:
    """The webhook's deliveries, newest first, each with every attempt: its HTTP status or error."""
    webhook = service.authorize_webhook(session, caller, webhook_id)
    return [_delivery(logged) for logged in service.delivery_log(session, webhook, limit=limit)]


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    responses=errors(409),
)
def redeliver(webhook_id: str, delivery_id: str, session: SessionDep, caller: CallerDep) -> DeliveryOut:
    """Send a delivery again, the same body (and delivery id), within seconds: one more attempt."""
    webhook = service.authorize_webhook(session, caller, webhook_id)
    return _delivery(service.redeliver(session, webhook, delivery_id))


def _delivery(logged: service.Logged) -> DeliveryOut:
    delivery = logged.delivery
    pending = delivery.status is DeliveryStatus.pending
    return DeliveryOut(
        id=delivery.id,
        webhook_id=delivery.webhook_id,
        event=delivery.event,
        status=delivery.status,
        created_at=delivery.created_at,
        next_attempt_at=delivery.next_attempt_at if pending else None,
        finished_at=delivery.finished_at,
        attempts=[AttemptOut.model_validate(attempt) for attempt in logged.attempts],
        payload=json.loads(delivery.body),
    )
