"""Sending deliveries on both databases, to a real receiver on loopback: signed bodies of exactly the
contract's fields, retries with backoff on a failure or a timeout until a day is over, every attempt
logged, loopback refused unless allowed (at delivery time too), one attempt per claim, redelivery."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grader.service.db import utcnow
from grader.service.errors import Conflict
from grader.service.metrics import REGISTRY
from grader.service.webhooks import addresses, delivery, service
from grader.service.webhooks.delivery import deliver_due
from grader.service.webhooks.models import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery
from grader.settings import Settings
from tests.grader.service.factories import course_with_student
from tests.grader.service.webhooks.conftest import Receiver, grade_row, webhook_row

CONTRACT = {
    "event",
    "delivery_id",
    "course_id",
    "assignment_id",
    "submission_id",
    "student",
    "score",
    "max_score",
    "final_score",
    "late_days",
    "graded_at",
}


def settings_for(database_url: str, tmp_path: Path, *, allow_private: bool = True) -> Settings:
    return Settings(data_dir=tmp_path, database_url=database_url, webhook_allow_private=allow_private)


def announced(sessions: sessionmaker[Session], url: str, *, students: int = 1) -> list[str]:
    """A webhook to `url` of a new assignment, and one grade change per student: the deliveries' ids."""
    with sessions.begin() as session:
        assignment, student = course_with_student(session)
        webhook = webhook_row(session, assignment, url)
        rows = [grade_row(student)]
        for _ in range(students - 1):
            _, other = course_with_student(session)  # a user of another course: a row is all this needs
            rows.append(grade_row(other))
        assert service.announce_changes(session, assignment, rows) == students
        return list(
            session.scalars(select(WebhookDelivery.id).where(WebhookDelivery.webhook_id == webhook.id))
        )


def state(sessions: sessionmaker[Session], delivery_id: str) -> tuple[WebhookDelivery, list[WebhookAttempt]]:
    with sessions() as session:
        found = session.get(WebhookDelivery, delivery_id)
        assert found is not None
        query = select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)
        return found, list(session.scalars(query.order_by(WebhookAttempt.number)))


def count(outcome: str) -> float:
    return REGISTRY.get_sample_value("grader_webhook_deliveries_total", {"outcome": outcome}) or 0.0


def test_a_refused_first_attempt_is_retried_within_a_minute_and_both_are_logged(
    sessions: sessionmaker[Session], receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, tmp_path)
    receiver.answers = [500, 200]
    (delivery_id,) = announced(sessions, receiver.url())
    retried, delivered = count("retried"), count("delivered")

    before = utcnow()
    assert deliver_due(sessions, settings=settings, worker="w") == 1
    first, attempts = state(sessions, delivery_id)
    assert first.status is DeliveryStatus.pending and [a.status_code for a in attempts] == [500]
    assert before < first.next_attempt_at <= utcnow() + timedelta(seconds=30)  # the first retry: soon
    assert deliver_due(sessions, settings=settings, worker="w") == 0  # not before its time

    assert deliver_due(sessions, settings=settings, worker="w", now=utcnow() + timedelta(minutes=1)) == 1
    done, attempts = state(sessions, delivery_id)
    assert done.status is DeliveryStatus.delivered and done.finished_at is not None
    assert [(a.number, a.status_code, a.error) for a in attempts] == [(1, 500, None), (2, 200, None)]
    assert attempts[0].response == "not now" and attempts[1].response == "ok"
    assert (count("retried"), count("delivered")) == (retried + 1, delivered + 1)

    first_request, second_request = receiver.received
    assert first_request.signed and second_request.signed
    assert first_request.body == second_request.body == done.body.encode()
    for request in receiver.received:
        assert request.path == "/hook"
        assert request.headers["X-Grader-Event"] == "grade.updated"
        assert request.headers["X-Grader-Delivery"] == delivery_id
        assert request.headers["Content-Type"] == "application/json"
    body = json.loads(first_request.body)
    assert set(body) == CONTRACT
    assert set(body["student"]) == {"email", "student_number", "lms_id"}
    assert body["event"] == "grade.updated" and body["delivery_id"] == delivery_id
    assert (body["score"], body["max_score"], body["final_score"], body["late_days"]) == (40.0, 50.0, 40.0, 0)
    assert body["graded_at"] == "2026-03-01T08:00:00Z"
    assert deliver_due(sessions, settings=settings, worker="w", now=utcnow() + timedelta(days=2)) == 0


def test_a_receiver_that_checks_signatures_refuses_a_wrong_secret(
    sessions: sessionmaker[Session], receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    (delivery_id,) = announced(sessions, receiver.url())
    receiver.secret = "another secret"

    deliver_due(sessions, settings=settings_for(database_url, tmp_path), worker="w")

    (request,) = receiver.received
    assert not request.signed
    found, (attempt,) = state(sessions, delivery_id)
    assert attempt.status_code == 401 and found.status is DeliveryStatus.pending  # retried


def test_loopback_is_refused_at_delivery_time_even_by_name(
    sessions: sessionmaker[Session], receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, tmp_path, allow_private=False)
    by_name, by_address, mapped = (
        announced(sessions, receiver.url(host=host))[0]
        for host in ("localhost", "127.0.0.1", "[::ffff:127.0.0.1]")
    )
    refused = count("refused")

    assert deliver_due(sessions, settings=settings, worker="w") == 3

    assert receiver.received == []
    for delivery_id in (by_name, by_address, mapped):
        found, (attempt,) = state(sessions, delivery_id)
        assert found.status is DeliveryStatus.failed  # not retried: it would be refused again
        assert attempt.status_code is None and "loopback" in (attempt.error or "")
        assert "GRADER_WEBHOOK_ALLOW_PRIVATE" in (attempt.error or "")
    assert "localhost: it resolves to 127.0.0.1" in (state(sessions, by_name)[1][0].error or "")
    assert count("refused") == refused + 3


def test_every_address_of_a_name_is_checked_and_the_checked_one_is_connected_to(
    sessions: sessionmaker[Session],
    receiver: Receiver,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The delivery connects to the address it checked, with the name in the Host header: a name that
    resolves elsewhere by the time of the connection (DNS rebinding) changes nothing."""
    answers = {"hooks.example.test": ["127.0.0.1"], "mixed.example.test": ["93.184.216.34", "127.0.0.1"]}
    lookups: list[str] = []

    def resolve(host: str, port: int) -> list[addresses.Address]:
        lookups.append(host)
        found = answers[host]
        answers[host] = ["10.9.9.9"]  # rebound after the first answer: the grader never asks again
        return [addresses.literal(a) for a in found]  # type: ignore[misc]

    monkeypatch.setattr(addresses, "resolve", resolve)
    (pinned,) = announced(sessions, receiver.url(host="hooks.example.test"))
    deliver_due(sessions, settings=settings_for(database_url, tmp_path), worker="w")
    (request,) = receiver.received
    assert request.headers["Host"] == f"hooks.example.test:{receiver.port}"
    assert state(sessions, pinned)[0].status is DeliveryStatus.delivered
    assert lookups == ["hooks.example.test"]

    (mixed,) = announced(sessions, receiver.url(host="mixed.example.test"))
    deliver_due(sessions, settings=settings_for(database_url, tmp_path, allow_private=False), worker="w")
    found, (attempt,) = state(sessions, mixed)
    assert found.status is DeliveryStatus.failed
    assert "mixed.example.test: it resolves to 127.0.0.1, a loopback address" in (attempt.error or "")


def test_https_is_pinned_too_and_the_certificate_is_checked_against_the_name(
    sessions: sessionmaker[Session],
    tls_receiver: Receiver,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ssl

    def trusting() -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(tls_receiver.cert))

    monkeypatch.setattr(delivery, "tls_context", trusting)
    monkeypatch.setattr(addresses, "resolve", lambda host, port: [addresses.literal("127.0.0.1")])
    settings = settings_for(database_url, tmp_path)
    good = announced(sessions, tls_receiver.url(host="hooks.example.test"))[0]
    wrong_name = announced(sessions, tls_receiver.url(host="other.example.test"))[0]
    by_address = announced(sessions, tls_receiver.url(host="127.0.0.1"))[0]

    assert deliver_due(sessions, settings=settings, worker="w") == 3

    (request,) = tls_receiver.received
    assert request.signed and request.headers["Host"] == f"hooks.example.test:{tls_receiver.port}"
    assert state(sessions, good)[0].status is DeliveryStatus.delivered
    for refused in (wrong_name, by_address):
        found, (attempt,) = state(sessions, refused)
        assert found.status is DeliveryStatus.pending and attempt.status_code is None
        assert "certificate" in (attempt.error or "")


def test_a_timeout_is_a_failure_and_is_retried(
    sessions: sessionmaker[Session], receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, tmp_path)
    receiver.answers = [("sleep", 2.0), 200]
    (delivery_id,) = announced(sessions, receiver.url())

    started = time.monotonic()
    deliver_due(sessions, settings=settings, worker="w", timeout=0.5)
    assert time.monotonic() - started < 1.8
    found, (attempt,) = state(sessions, delivery_id)
    assert found.status is DeliveryStatus.pending
    assert (attempt.status_code, attempt.error) == (None, "no answer within 0.5 s")
    assert 0.4 < attempt.seconds < 1.8

    deliver_due(sessions, settings=settings, worker="w", timeout=0.5, now=utcnow() + timedelta(minutes=1))
    found, attempts = state(sessions, delivery_id)
    assert found.status is DeliveryStatus.delivered and [a.status_code for a in attempts] == [None, 200]


def test_a_receiver_dripping_its_answer_is_cut_at_the_timeout(
    sessions: sessionmaker[Session], receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    """Each byte comes well within the socket's timeout; the attempt's deadline still holds."""
    receiver.answers = [("drip", 4.0)]
    (delivery_id,) = announced(sessions, receiver.url())

    started = time.monotonic()
    deliver_due(sessions, settings=settings_for(database_url, tmp_path), worker="w", timeout=0.6)

    assert time.monotonic() - started < 2.0
    found, (attempt,) = state(sessions, delivery_id)
    assert (found.status, attempt.error) == (DeliveryStatus.pending, "no answer within 0.6 s")


def test_a_closed_port_is_a_failure_and_is_retried(
    sessions: sessionmaker[Session], receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    (delivery_id,) = announced(sessions, "http://127.0.0.1:1/hook")

    deliver_due(sessions, settings=settings_for(database_url, tmp_path), worker="w")

    found, (attempt,) = state(sessions, delivery_id)
    assert found.status is DeliveryStatus.pending
    assert attempt.status_code is None and "refused" in (attempt.error or "")


@pytest.mark.parametrize("failures", range(1, 40))
def test_the_backoff_doubles_with_full_jitter_up_to_an_hour(failures: int) -> None:
    ceiling = min(timedelta(hours=1), timedelta(seconds=30) * 2 ** (failures - 1))
    assert delivery.retry_delay(failures, draw=0.999999) <= ceiling
    assert delivery.retry_delay(failures, draw=0.999999) > ceiling * 0.99
    assert delivery.retry_delay(failures, draw=0.0) == timedelta(seconds=1)
    for _ in range(20):
        assert timedelta(seconds=1) <= delivery.retry_delay(failures) <= ceiling
    assert delivery.retry_delay(1) <= timedelta(minutes=1)  # the first retry: within a minute


def test_retries_end_a_day_after_the_delivery_was_written(
    sessions: sessionmaker[Session], receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, tmp_path)
    receiver.answers = [503] * 10
    (delivery_id,) = announced(sessions, receiver.url())
    written = state(sessions, delivery_id)[0].created_at
    failed = count("failed")

    deliver_due(sessions, settings=settings, worker="w", now=written + timedelta(days=1, seconds=-0.5))
    found, _ = state(sessions, delivery_id)
    assert found.status is DeliveryStatus.pending
    assert found.next_attempt_at == written + timedelta(days=1)  # the last retry: the day's end, not later

    deliver_due(sessions, settings=settings, worker="w", now=written + timedelta(days=1))
    found, attempts = state(sessions, delivery_id)
    assert found.status is DeliveryStatus.failed and len(attempts) == 2
    assert count("failed") == failed + 1
    assert deliver_due(sessions, settings=settings, worker="w", now=written + timedelta(days=3)) == 0

    # between: the schedule never passes the day's end
    for hours in (0, 1, 6, 23.99):
        now = written + timedelta(hours=hours)
        retry = delivery.next_attempt_at(written, now, failures=30)
        assert retry is not None and now < retry <= written + timedelta(days=1)
    assert delivery.next_attempt_at(written, written + timedelta(days=1, seconds=1), failures=1) is None


def test_two_delivery_loops_never_send_one_delivery_twice(
    sessions: sessionmaker[Session], receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, tmp_path)
    receiver.answers = [("sleep", 0.02)] * 30
    ids = announced(sessions, receiver.url(), students=30)
    start = threading.Barrier(3)
    made: list[int] = []

    def loop(name: str) -> None:
        start.wait()
        made.append(deliver_due(sessions, settings=settings, worker=name))

    threads = [threading.Thread(target=loop, args=(f"loop-{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    sent = Counter(request.headers["X-Grader-Delivery"] for request in receiver.received)
    assert sorted(sent) == sorted(ids) and set(sent.values()) == {1}
    assert sum(made) == 30
    for delivery_id in ids:
        found, attempts = state(sessions, delivery_id)
        assert found.status is DeliveryStatus.delivered and len(attempts) == 1


def test_a_claim_is_held_until_its_lease_ends(sessions: sessionmaker[Session], receiver: Receiver) -> None:
    (delivery_id,) = announced(sessions, receiver.url())
    now = utcnow()
    with sessions.begin() as session:
        first = delivery.claim(session, worker="dies", now=now)
    with sessions.begin() as session:
        assert delivery.claim(session, worker="other", now=now + timedelta(seconds=30)) is None
    with sessions.begin() as session:
        second = delivery.claim(session, worker="other", now=now + delivery.LEASE + timedelta(seconds=1))
    assert first is not None and second is not None
    assert (first.delivery_id, first.number) == (delivery_id, 1)
    assert (second.delivery_id, second.number) == (delivery_id, 2)
    # the first loop's late answer is logged, but decides nothing: the lease is the second's
    answer = delivery.Answer(200, None, "ok")
    with sessions.begin() as session:
        delivery.record(session, first, answer, started_at=now, seconds=61.0, now=now + delivery.LEASE * 2)
    found, attempts = state(sessions, delivery_id)
    assert found.status is DeliveryStatus.pending and found.lease_owner == second.owner
    assert [a.number for a in attempts] == [1]


def test_redelivery_sends_the_same_body_again(
    sessions: sessionmaker[Session], receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, tmp_path)
    (delivery_id,) = announced(sessions, receiver.url())
    deliver_due(sessions, settings=settings, worker="w")
    assert state(sessions, delivery_id)[0].status is DeliveryStatus.delivered

    with sessions.begin() as session:
        found = session.get(WebhookDelivery, delivery_id)
        webhook = session.get(Webhook, found.webhook_id)  # type: ignore[union-attr]
        assert webhook is not None
        logged = service.redeliver(session, webhook, delivery_id)
        assert logged.delivery.status is DeliveryStatus.pending and len(logged.attempts) == 1
    assert deliver_due(sessions, settings=settings, worker="w") == 1

    first, second = receiver.received
    assert first.body == second.body and second.signed
    assert second.headers["X-Grader-Delivery"] == delivery_id
    found, attempts = state(sessions, delivery_id)
    assert found.status is DeliveryStatus.delivered and [a.number for a in attempts] == [1, 2]

    with sessions.begin() as session:
        held = delivery.claim(session, worker="busy", now=utcnow() - timedelta(seconds=1))
    assert held is None  # delivered: nothing to claim
    with sessions.begin() as session:
        service.redeliver(session, webhook, delivery_id)
    with sessions.begin() as session:
        assert delivery.claim(session, worker="busy") is not None
    with pytest.raises(Conflict), sessions.begin() as session:
        service.redeliver(session, webhook, delivery_id)  # under way: its outcome is coming


def test_a_deleted_webhooks_waiting_deliveries_are_given_up(
    sessions: sessionmaker[Session], receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    (delivery_id,) = announced(sessions, receiver.url())
    with sessions.begin() as session:
        (webhook,) = session.scalars(select(Webhook))
        service.delete_webhook(session, webhook)

    assert deliver_due(sessions, settings=settings_for(database_url, tmp_path), worker="w") == 0
    assert receiver.received == []
    assert state(sessions, delivery_id)[0].status is DeliveryStatus.failed


def test_the_loop_runs_until_stopped(
    sessions: sessionmaker[Session], receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, tmp_path).model_copy(update={"worker_poll_seconds": 0.05})
    ids = announced(sessions, receiver.url(), students=3)
    stop = threading.Event()
    loop = threading.Thread(target=delivery.run_deliveries, args=(sessions, settings, stop))
    loop.start()
    deadline = time.monotonic() + 10
    while len(receiver.received) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    loop.join(timeout=10)
    assert not loop.is_alive()
    assert sorted(request.headers["X-Grader-Delivery"] for request in receiver.received) == sorted(ids)


def test_the_grading_workers_run_the_delivery_loop(
    sessions: sessionmaker[Session], receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    """`grader worker` and `grader serve` grade through run_workers: its delivery loop sends too."""
    from grader.service.grading.worker import run_workers

    settings = settings_for(database_url, tmp_path).model_copy(update={"worker_poll_seconds": 0.05})
    (delivery_id,) = announced(sessions, receiver.url())
    stop = threading.Event()
    workers = threading.Thread(
        target=run_workers, args=(settings,), kwargs={"concurrency": 0, "stop": stop, "grader": None}
    )
    workers.start()
    deadline = time.monotonic() + 10
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    workers.join(timeout=10)
    assert not workers.is_alive()
    assert [request.headers["X-Grader-Delivery"] for request in receiver.received] == [delivery_id]


def test_a_failure_of_the_sender_itself_is_an_attempt_that_failed(
    sessions: sessionmaker[Session],
    receiver: Receiver,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not a delivery held forever by a claim that never ends: it is logged and retried like any."""

    def broken(*args: object, **kwargs: object) -> delivery.Answer:
        raise RuntimeError("a bug")

    monkeypatch.setattr(delivery, "post", broken)
    (delivery_id,) = announced(sessions, receiver.url())
    deliver_due(sessions, settings=settings_for(database_url, tmp_path), worker="w")

    found, (attempt,) = state(sessions, delivery_id)
    assert found.status is DeliveryStatus.pending and found.lease_owner is None
    assert attempt.error == "the grader failed to send it: RuntimeError: a bug"
