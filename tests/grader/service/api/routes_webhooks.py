"""The access matrix's rows for webhooks (see access_rules.py).

Webhooks are the course's instructors' (and admins'): a webhook's URL and delivery log carry every
student's grades. Each request that changes one acts on a webhook (and delivery) of its own, made
directly in the database, so that one role's deletion leaves the next role something to try."""

from __future__ import annotations

from grader.service.webhooks.models import Webhook, WebhookDelivery
from tests.grader.service.api.access_rules import Routes, manage
from tests.grader.service.api.conftest import World

PUBLIC_URL = "https://93.184.216.34/grader-hook"


def _webhook(w: World) -> str:
    with w.session() as session:
        webhook = Webhook(
            assignment_id=w.assignment, url=PUBLIC_URL, secret="whsec_matrix", created_by="test"
        )
        session.add(webhook)
        session.commit()
        return webhook.id


def _delivery(w: World) -> tuple[str, str]:
    webhook_id = _webhook(w)
    with w.session() as session:
        delivery = WebhookDelivery(webhook_id=webhook_id, event="grade.updated", body="{}")
        session.add(delivery)
        session.commit()
        return webhook_id, delivery.id


def _redeliver(w: World) -> str:
    webhook_id, delivery_id = _delivery(w)
    return f"/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"


ROUTES: Routes = {
    ("POST", "/api/v1/assignments/{assignment_id}/webhooks"): (
        lambda w, r: (f"/api/v1/assignments/{w.assignment}/webhooks", {"json": {"url": PUBLIC_URL}}),
        manage(201),
    ),
    ("GET", "/api/v1/assignments/{assignment_id}/webhooks"): (
        lambda w, r: (f"/api/v1/assignments/{w.assignment}/webhooks", {}),
        manage(200),
    ),
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): (
        lambda w, r: (f"/api/v1/webhooks/{_webhook(w)}", {}),
        manage(204),
    ),
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): (
        lambda w, r: (f"/api/v1/webhooks/{_delivery(w)[0]}/deliveries", {}),
        manage(200),
    ),
    ("POST", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): (
        lambda w, r: (_redeliver(w), {}),
        manage(202),
    ),
}
