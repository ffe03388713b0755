"""The webhook routes on both databases: registering (the secret shown once; loopback, private and
link-local targets refused with a clear detail), listing without secrets, deleting, the delivery log
and redelivery."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from grader.service.accounts.models import User
from grader.service.assignments.models import Assignment
from grader.service.webhooks import service
from grader.service.webhooks.delivery import deliver_due
from grader.service.webhooks.models import Webhook, WebhookDelivery
from tests.grader.service.api.conftest import World
from tests.grader.service.webhooks.conftest import grade_row

PUBLIC_URL = "https://93.184.216.34/grader-hook"


def register(world: World, url: str = PUBLIC_URL, role: str = "instructor") -> tuple[int, dict[str, object]]:
    answer = world.client.post(
        f"/api/v1/assignments/{world.assignment}/webhooks", json={"url": url}, headers=world.headers[role]
    )
    return answer.status_code, answer.json()


def announce_one(world: World) -> str:
    """A grade change of a student of the course, announced to the assignment's webhooks."""
    with world.session() as session:
        assignment = session.get(Assignment, world.assignment)
        student = session.scalar(select(User).where(User.email == world.emails["student"]))
        assert assignment is not None and student is not None
        assert service.announce_changes(session, assignment, [grade_row(student)]) >= 1
        session.commit()
        return session.scalars(select(WebhookDelivery.id).order_by(WebhookDelivery.created_at.desc())).first()  # type: ignore[return-value]


def test_a_webhook_is_registered_and_its_secret_shown_once(world: World) -> None:
    status, created = register(world)
    assert status == 201 and set(created) == {"id", "secret"}
    assert isinstance(created["secret"], str) and len(created["secret"]) >= 32

    listed = world.client.get(
        f"/api/v1/assignments/{world.assignment}/webhooks", headers=world.headers["instructor"]
    )
    assert listed.status_code == 200
    (webhook,) = listed.json()
    assert webhook["id"] == created["id"] and webhook["url"] == PUBLIC_URL
    assert "secret" not in webhook and created["secret"] not in listed.text
    assert set(webhook) == {"id", "assignment_id", "url", "created_at"}

    status, again = register(world)
    assert status == 201 and again["secret"] != created["secret"]  # each webhook its own secret


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1:8000/hook", "127.0.0.1: a loopback address"),
        ("http://localhost:8000/hook", "localhost: it resolves to"),
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://10.0.0.5/hook", "private"),
        ("http://192.168.1.20/hook", "private"),
        ("http://169.254.10.1/hook", "link-local"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://169.254.169.254/latest/meta-data", "metadata"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("ftp://93.184.216.34/hook", "https:// or http://"),
        ("https://admin:secret@93.184.216.34/hook", "credentials"),
        ("https://93.184.216.34/" + "x" * 2001, "at most 2000 characters"),
    ],
)
def test_a_url_a_webhook_may_not_have_is_refused_with_a_clear_detail(
    world: World, url: str, says: str
) -> None:
    status, answer = register(world, url)
    assert status == 422
    detail = answer["detail"]
    assert isinstance(detail, str) and detail.startswith("url:") and says in detail
    if any(kind in says for kind in ("loopback", "private", "link-local", "resolves")):
        assert "GRADER_WEBHOOK_ALLOW_PRIVATE=true" in detail


def test_deleting_a_webhook_stops_it(world: World) -> None:
    _, created = register(world)
    delivery_id = announce_one(world)
    gone = world.client.delete(f"/api/v1/webhooks/{created['id']}", headers=world.headers["instructor"])
    assert gone.status_code == 204

    listed = world.client.get(
        f"/api/v1/assignments/{world.assignment}/webhooks", headers=world.headers["instructor"]
    )
    assert listed.json() == []
    for method, url in [
        ("DELETE", f"/api/v1/webhooks/{created['id']}"),
        ("GET", f"/api/v1/webhooks/{created['id']}/deliveries"),
        ("POST", f"/api/v1/webhooks/{created['id']}/deliveries/{delivery_id}/redeliver"),
    ]:
        answer = world.client.request(method, url, headers=world.headers["instructor"])
        assert (answer.status_code, answer.json()["detail"]) == (404, "no such webhook")


def test_the_delivery_log_shows_every_attempt_and_a_delivery_can_be_redelivered(world: World) -> None:
    status, created = register(world)
    assert status == 201
    delivery_id = announce_one(world)
    log_url = f"/api/v1/webhooks/{created['id']}/deliveries"

    (waiting,) = world.client.get(log_url, headers=world.headers["instructor"]).json()
    assert waiting["id"] == delivery_id and waiting["status"] == "pending" and waiting["attempts"] == []
    assert waiting["payload"]["delivery_id"] == delivery_id and waiting["payload"]["event"] == "grade.updated"
    assert waiting["next_attempt_at"] is not None

    # the address becomes unreachable: an attempt that gets no answer
    with world.session() as session:
        session.execute(WebhookDelivery.__table__.update().values(next_attempt_at=WebhookDelivery.created_at))
        hook = session.get(Webhook, created["id"])
        assert hook is not None
        hook.url = "http://127.0.0.1:9/hook"
        session.commit()
    settings = world.app.state.settings
    assert deliver_due(world.app.state.sessions, settings=settings, worker="test") == 1

    (failed,) = world.client.get(log_url, headers=world.headers["instructor"]).json()
    assert failed["status"] == "failed" and failed["next_attempt_at"] is None and failed["finished_at"]
    (attempt,) = failed["attempts"]
    assert attempt["number"] == 1 and attempt["status_code"] is None and "loopback" in attempt["error"]
    assert set(attempt) == {"number", "started_at", "seconds", "status_code", "error", "response"}

    again = world.client.post(f"{log_url}/{delivery_id}/redeliver", headers=world.headers["instructor"])
    assert again.status_code == 202
    assert again.json()["status"] == "pending" and again.json()["id"] == delivery_id
    assert len(again.json()["attempts"]) == 1
    missing = world.client.post(f"{log_url}/nope/redeliver", headers=world.headers["instructor"])
    assert missing.status_code == 404


def test_the_log_is_newest_first_and_limited(world: World) -> None:
    _, created = register(world)
    first = announce_one(world)
    with world.session() as session:
        assignment = session.get(Assignment, world.assignment)
        student = session.scalar(select(User).where(User.email == world.emails["student"]))
        assert assignment is not None and student is not None
        service.announce_changes(session, assignment, [grade_row(student, score=41.0, final_score=41.0)])
        session.commit()
    log_url = f"/api/v1/webhooks/{created['id']}/deliveries"
    newest, oldest = world.client.get(log_url, headers=world.headers["admin"]).json()
    assert oldest["id"] == first and newest["payload"]["score"] == 41.0
    (only,) = world.client.get(log_url, params={"limit": 1}, headers=world.headers["admin"]).json()
    assert only["id"] == newest["id"]
    assert world.client.get(log_url, params={"limit": 0}, headers=world.headers["admin"]).status_code == 422
