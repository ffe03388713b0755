"""Sending webhook deliveries from the outbox: claim a due delivery with a lease, POST its body once,
log the attempt, then mark it delivered (a 2xx answer) or schedule the next attempt.

Claims are conditional updates like the grading queue's (and skip rows other processes are locking on
PostgreSQL), so two delivery loops never send one attempt twice. A failed attempt (an answer other than
2xx, no answer within the timeout, no connection) is retried after an exponential backoff with full
jitter (the first within 30 s, then up to 1, 2, 4 ... minutes, never more than an hour apart) until a
day after the delivery was written; then it has failed. A refused address is not retried: it would be
refused again (staff can redeliver once it is fixed).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import logging
import os
import random
import secrets
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.metadata import version

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from grader.service.db import utcnow
from grader.service.metrics import WEBHOOK_DELIVERIES
from grader.service.webhooks import addresses
from grader.service.webhooks.models import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery
from grader.settings import Settings

log = logging.getLogger("grader.webhooks")

DELIVERY_TIMEOUT = 10.0  # seconds from the first connection to the end of the answer's first KiB
FIRST_RETRY = timedelta(seconds=30)  # the longest wait before the first retry; it doubles after each
LONGEST_RETRY = timedelta(hours=1)
RETRY_WINDOW = timedelta(days=1)  # from the delivery's creation: retried until then, failed after
LEASE = timedelta(seconds=60)  # well past the timeout: a claim outlives its attempt
RESPONSE_BYTES = 1024
SENDERS = 2  # delivery threads per process: one slow receiver does not hold up the others
USER_AGENT = f"grader-webhooks/{version('grader')}"


def signature(secret: str, body: bytes) -> str:
    """X-Grader-Signature: `sha256=` and the hex HMAC-SHA256 of the raw body, keyed with the secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Answer:
    """What one attempt got: an HTTP status (None: no answer) or an error, and the answer's first KiB."""

    status_code: int | None
    error: str | None
    response: str | None = None
    refused: bool = False  # the address is not one a webhook may reach: not retried

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def tls_context() -> ssl.SSLContext:
    """The system's trusted certificates, the certificate checked against the URL's host."""
    return ssl.create_default_context()


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to an address checked beforehand, whatever the name resolves to by now: the
    Host header, the TLS server name and the certificate's check are the URL's host."""

    def __init__(
        self, host: str, port: int, *, address: addresses.Address, timeout: float, tls: ssl.SSLContext | None
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address, self.tls = address, tls
        self.default_port = 443 if tls is not None else 80  # no :443 in the Host header of https

    def connect(self) -> None:
        self.sock = socket.create_connection((str(self.address), self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            self.sock = self.tls.wrap_socket(self.sock, server_hostname=self.host)

    def hang_up(self) -> None:
        """Cut the connection from another thread (a receiver dripping its answer past the deadline)."""
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # closed already
                sock.shutdown(socket.SHUT_RDWR)


def post(url: str, body: bytes, headers: dict[str, str], *, allow_private: bool, timeout: float) -> Answer:
    """POST the body once, to an address of the URL's host checked just now; no redirect is followed.
    `timeout` bounds everything after the name's resolution (the system resolver keeps its own)."""
    try:
        target = addresses.parse_url(url)
        checked = addresses.checked_addresses(target, allow_private=allow_private)
    except (ValueError, addresses.Refused) as exc:
        return Answer(None, str(exc), refused=True)
    except addresses.Unresolvable as exc:
        return Answer(None, str(exc))
    tls = tls_context() if target.scheme == "https" else None
    deadline = time.monotonic() + timeout
    expired = threading.Event()
    current: list[_PinnedConnection] = []

    def hang_up() -> None:
        expired.set()
        for connection in current[-1:]:
            connection.hang_up()

    no_answer = Answer(None, f"no answer within {timeout:g} s")
    timer = threading.Timer(timeout, hang_up)
    timer.daemon = True
    timer.start()
    failures = []
    try:
        for address in checked:  # the next address only when one refuses the connection
            remaining = deadline - time.monotonic()
            if expired.is_set() or remaining <= 0:
                return no_answer
            connection = _PinnedConnection(
                target.host, target.port, address=address, timeout=remaining, tls=tls
            )
            current.append(connection)
            try:
                try:
                    connection.connect()
                except OSError as exc:
                    if expired.is_set() or isinstance(exc, TimeoutError):
                        return no_answer
                    failures.append(f"{address} port {target.port}: {_describe(exc)}")
                    continue
                try:
                    answer = _exchange(connection, target.path, body, headers)
                except (OSError, http.client.HTTPException) as exc:
                    if expired.is_set() or isinstance(exc, TimeoutError):
                        return no_answer
                    return Answer(None, _describe(exc))
                # Hung up on, http.client may take what came for a whole answer: it was none.
                return no_answer if expired.is_set() else answer
            finally:
                connection.close()
        return Answer(None, "; ".join(failures) or "no address to connect to")
    finally:
        timer.cancel()


def _exchange(connection: _PinnedConnection, path: str, body: bytes, headers: dict[str, str]) -> Answer:
    connection.request("POST", path, body=body, headers=headers)
    answer = connection.getresponse()
    try:
        text = answer.read(RESPONSE_BYTES)
    except (OSError, http.client.HTTPException):  # the status came: it is the answer
        text = b""
    return Answer(answer.status, None, text.decode("utf-8", "replace"))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the TLS certificate was not accepted: {exc.verify_message or exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the receiver closed the connection without answering"
    return f"{type(exc).__name__}: {exc}"


def retry_delay(failures: int, *, draw: float | None = None) -> timedelta:
    """How long to wait after the `failures`-th failed attempt: full jitter, a random time between 1 s
    and 30 s doubled `failures - 1` times (at most an hour). `draw` in [0, 1) replaces the random one."""
    ceiling = min(LONGEST_RETRY, FIRST_RETRY * (1 << min(max(failures - 1, 0), 20)))
    drawn = random.random() if draw is None else draw
    return max(timedelta(seconds=1), ceiling * drawn)


def next_attempt_at(created_at: datetime, now: datetime, failures: int) -> datetime | None:
    """When to try again after a failed attempt; None once the delivery's day is over (it has failed).
    The last retry is at the end of the day, however short the wait before it."""
    ends = created_at + RETRY_WINDOW
    if now >= ends:
        return None
    return min(now + retry_delay(failures), ends)


@dataclass(frozen=True)
class Lease:
    """A delivery a loop holds for one attempt, and what sending it needs."""

    delivery_id: str
    number: int  # the attempt's
    owner: str
    url: str
    secret: str
    event: str
    body: str
    created_at: datetime


def _due(now: datetime) -> ColumnElement[bool]:
    unheld = or_(WebhookDelivery.lease_expires_at.is_(None), WebhookDelivery.lease_expires_at < now)
    return (
        (WebhookDelivery.status == DeliveryStatus.pending) & (WebhookDelivery.next_attempt_at <= now) & unheld
    )


def claim(
    session: Session, *, worker: str, now: datetime | None = None, lease: timedelta = LEASE
) -> Lease | None:
    """Take the delivery due longest (of a webhook not deleted) for one attempt; None if none is due.
    The caller commits at once: the claim is its own short transaction."""
    now = now or utcnow()
    candidates = (
        select(WebhookDelivery)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(_due(now), Webhook.deleted_at.is_(None))
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(5)
    )
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True, of=WebhookDelivery)
    owner = f"{worker}#{secrets.token_hex(4)}"[-200:]
    for delivery in session.scalars(candidates).all():
        taken = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery.id, WebhookDelivery.attempts == delivery.attempts, _due(now)
            )
            .values(attempts=WebhookDelivery.attempts + 1, lease_owner=owner, lease_expires_at=now + lease)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            continue  # another loop took it between our read and our write
        webhook = session.get(Webhook, delivery.webhook_id)
        assert webhook is not None
        return Lease(
            delivery_id=delivery.id,
            number=delivery.attempts + 1,
            owner=owner,
            url=webhook.url,
            secret=webhook.secret,
            event=delivery.event,
            body=delivery.body,
            created_at=delivery.created_at,
        )
    return None


def record(
    session: Session, lease: Lease, answer: Answer, *, started_at: datetime, seconds: float, now: datetime
) -> str:
    """Log the attempt and decide what follows it (only while the lease holds: a delivery deleted or
    taken over meanwhile keeps its state); the attempt's outcome, as the metric counts it."""
    session.add(
        WebhookAttempt(
            delivery_id=lease.delivery_id,
            number=lease.number,
            started_at=started_at,
            seconds=seconds,
            status_code=answer.status_code,
            error=answer.error[:10_000] if answer.error else None,
            response=answer.response,
        )
    )
    values: dict[str, object] = {"lease_owner": None, "lease_expires_at": None}
    if answer.delivered:
        outcome = "delivered"
        values.update(status=DeliveryStatus.delivered, finished_at=now)
    elif answer.refused:
        outcome = "refused"
        values.update(status=DeliveryStatus.failed, finished_at=now)
    elif (retry := next_attempt_at(lease.created_at, now, lease.number)) is None:
        outcome = "failed"
        values.update(status=DeliveryStatus.failed, finished_at=now)
    else:
        outcome = "retried"
        values.update(next_attempt_at=retry)
    held = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == lease.delivery_id,
            WebhookDelivery.lease_owner == lease.owner,
            WebhookDelivery.attempts == lease.number,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if held.rowcount != 1:  # type: ignore[attr-defined]
        log.warning("delivery %s: the lease was lost during attempt %d", lease.delivery_id, lease.number)
    session.flush()
    return outcome


def headers_for(lease: Lease, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Grader-Event": lease.event,
        "X-Grader-Delivery": lease.delivery_id,
        "X-Grader-Signature": signature(lease.secret, body),
        "Connection": "close",
    }


def deliver_due(
    sessions: sessionmaker[Session],
    *,
    settings: Settings,
    worker: str,
    now: datetime | None = None,
    timeout: float = DELIVERY_TIMEOUT,
    limit: int = 100,
) -> int:
    """Make one attempt at each due delivery, up to `limit`; how many attempts were made. `now` replaces
    the clock (the schedule is reckoned from it)."""
    made = 0
    while made < limit:
        with sessions.begin() as session:
            lease = claim(session, worker=worker, now=now)
        if lease is None:
            break
        started_at, started = now or utcnow(), time.monotonic()
        body = lease.body.encode()
        try:
            answer = post(
                lease.url,
                body,
                headers_for(lease, body),
                allow_private=settings.webhook_allow_private,
                timeout=timeout,
            )
        except Exception as exc:  # a bug of ours must not hold the delivery past its day
            log.exception("webhook delivery %s, attempt %d", lease.delivery_id, lease.number)
            answer = Answer(None, f"the grader failed to send it: {type(exc).__name__}: {exc}")
        seconds = time.monotonic() - started
        with sessions.begin() as session:
            outcome = record(
                session, lease, answer, started_at=started_at, seconds=seconds, now=now or utcnow()
            )
        WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
        log.info(
            "webhook delivery %s, attempt %d: %s (%s)",
            lease.delivery_id,
            lease.number,
            outcome,
            answer.status_code if answer.status_code is not None else answer.error,
        )
        made += 1
    return made


def run_deliveries(
    sessions: sessionmaker[Session], settings: Settings, stop: threading.Event, *, senders: int = SENDERS
) -> None:
    """Send due deliveries on `senders` threads until `stop` is set (each finishes its attempt first)."""

    def send() -> None:
        worker = f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"
        while not stop.is_set():
            try:
                made = deliver_due(sessions, settings=settings, worker=worker, limit=1)
            except Exception:  # the database busy or away: the loop outlives it, the deliveries wait
                log.exception(
                    "a webhook delivery step failed; trying again in %g s", settings.worker_poll_seconds
                )
                made = 0
            if not made:
                stop.wait(settings.worker_poll_seconds)

    threads = [threading.Thread(target=send, name=f"webhooks-{n}") for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
