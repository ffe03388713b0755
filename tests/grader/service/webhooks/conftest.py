"""Fixtures of the webhook tests: a real HTTP receiver on loopback that checks each request's signature
and answers as the test scripts it, and the data a delivery needs (a course, a student, a webhook)."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from grader.service.accounts.models import User
from grader.service.assignments.models import Assignment
from grader.service.grades.service import GradeRow
from grader.service.webhooks.models import Webhook

# The API's world (its app, people and tokens), for the tests of the webhook routes.
from tests.grader.service.api.conftest import api_settings, client, world  # noqa: F401

SECRET = "whsec_test-secret"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signed: bool  # the X-Grader-Signature matched the body and the receiver's secret


@dataclass
class Receiver:
    """Answers each POST with the next of `answers` (an HTTP status; ("sleep", s) first sleeps s seconds
    then answers 200; ("drip", s) sends its headers a byte at a time for s seconds), 200 once they are
    used up; 401 to a request whose signature does not match."""

    port: int
    scheme: str = "http"
    secret: str = SECRET
    answers: list[int | tuple[str, float]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    cert: Path | None = None  # an HTTPS receiver's certificate

    def url(self, host: str = "127.0.0.1", path: str = "/hook") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def next_answer(self) -> int | tuple[str, float]:
        with self.lock:
            return self.answers.pop(0) if self.answers else 200


def _handler(receiver: Receiver) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
            signed = hmac.compare_digest(expected, self.headers.get("X-Grader-Signature", ""))
            with receiver.lock:
                receiver.received.append(Received(self.path, dict(self.headers.items()), body, signed))
            answer = receiver.next_answer() if signed else 401
            if isinstance(answer, tuple):
                kind, seconds = answer
                if kind == "drip":
                    self._drip(seconds)
                    return
                time.sleep(seconds)
                answer = 200
            self._answer(answer)

        def _answer(self, status: int) -> None:
            text = b"ok" if status < 300 else b"not now"
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)
            except OSError:
                pass  # the grader stopped waiting (a timeout the test wants)

        def _drip(self, seconds: float) -> None:
            ends = time.monotonic() + seconds
            try:
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                while time.monotonic() < ends:
                    self.wfile.write(b"X")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass  # the grader hung up: what the test wants

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def _serve(receiver: Receiver, server: http.server.ThreadingHTTPServer) -> Iterator[Receiver]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An HTTP receiver on 127.0.0.1 (a free port)."""
    made = Receiver(port=0)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(made))
    made.port = server.server_address[1]
    yield from _serve(made, server)


def self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A certificate for `name` (and its key), its own issuer."""
    import subprocess

    key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
            "-addext", f"subjectAltName=DNS:{name}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[Receiver]:
    """An HTTPS receiver on 127.0.0.1 whose certificate names hooks.example.test (`.cert`: its file)."""
    cert, key = self_signed(tmp_path, "hooks.example.test")
    made = Receiver(port=0, scheme="https", cert=cert)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(made))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    made.port = server.server_address[1]
    yield from _serve(made, server)


def webhook_row(session: Session, assignment: Assignment, url: str, secret: str = SECRET) -> Webhook:
    """A webhook written directly (no check of its URL: what registration would refuse, too)."""
    webhook = Webhook(assignment_id=assignment.id, url=url, secret=secret, created_by="test")
    session.add(webhook)
    session.flush()
    return webhook


def grade_row(
    student: User,
    *,
    submission_id: str | None = "s1",
    score: float | None = 40.0,
    final_score: float | None = 40.0,
    late_days: int = 0,
) -> GradeRow:
    """A student's final grade, as the grades module computes it (hand-made)."""
    graded = submission_id is not None
    return GradeRow(
        student_id=student.id,
        email=student.email,
        name=student.name,
        student_number="05551234",
        lms_id="lms-77",
        sis_login_id=None,
        section=None,
        first_name=None,
        last_name=None,
        submissions=1 if graded else 0,
        counting_submission_id=submission_id,
        score=score if graded else None,
        max_score=50.0,
        late_days=late_days,
        penalty=0.0,
        final_score=final_score if graded else None,
        graded_at=datetime(2026, 3, 1, 8, 0, tzinfo=UTC) if graded else None,
    )
