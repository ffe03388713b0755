"""Attacks on the pages, from a review: a CSRF token planted from another browser, secrets in cookies and
logs, an over-long Idempotency-Key, reports the page was not written for, too many live streams."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from grader.service.grading.models import GradingRun
from grader.service.server import HideInviteTokens
from grader.service.web.browser import secure_cookies
from grader.service.web.pages.submissions import STREAMS, StreamSlots
from grader.settings import Settings
from tests.grader.service.api.conftest import World, api_settings, client, world  # noqa: F401
from tests.grader.service.web.browsing import csrf_of, give_password, log_in


@pytest.fixture
def site(world: World) -> Iterator[World]:  # noqa: F811
    with world.app.state.sessions.begin() as session:
        for role in ("owner", "instructor"):
            give_password(session, world.emails[role])
    world.client.cookies.clear()
    yield world


def test_a_csrf_token_from_another_browser_does_not_pass(site: World) -> None:
    """An attacker's own valid token (from an anonymous visit), planted as the instructor's cookie."""
    with TestClient(site.app) as attacker:
        planted = attacker.cookies.get("grader_csrf") or (
            attacker.get("/login") and attacker.cookies["grader_csrf"]
        )
    log_in(site.client, site.emails["instructor"])
    site.client.cookies.set("grader_csrf", planted)
    forged = site.client.post(
        f"/assignments/{site.assignment}/dashboard/regrade",
        data={"csrf_token": planted},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    # The control: the token the instructor's own page gives passes.
    own = csrf_of(site.client.get(f"/assignments/{site.assignment}/dashboard").text)
    done = site.client.post(
        f"/assignments/{site.assignment}/dashboard/regrade", data={"csrf_token": own}, follow_redirects=False
    )
    assert done.status_code == 303


def test_a_secret_shown_once_never_sits_in_a_cookie(site: World) -> None:
    log_in(site.client, site.emails["instructor"])
    path = f"/courses/{site.course}/settings/tokens"
    token = csrf_of(site.client.get(path).text)
    answer = site.client.post(
        path, data={"name": "LMS", "scopes": ["grades:read"], "csrf_token": token}, follow_redirects=False
    )
    assert answer.status_code == 303
    flash = answer.cookies.get("grader_settings_flash") or ""
    body = flash.split(".")[0]
    decoded = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    assert "gt_" not in decoded and "gt_" not in answer.headers.get("set-cookie", "")
    page = site.client.get(answer.headers["location"])
    assert 'id="shown-once-value"' in page.text and "gt_" in page.text  # shown, from the server's keeping
    assert "gt_" not in site.client.get(answer.headers["location"]).text  # once


def test_invite_tokens_stay_out_of_the_access_log() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/invite/eyJhbGciOi.secret.part?x=1", "1.1", 200),
        None,
    )
    assert HideInviteTokens().filter(record)
    assert "secret" not in record.getMessage() and "/invite/<token>?x=1" in record.getMessage()


def test_cookies_are_secure_in_production_and_over_https() -> None:
    secret = "a-test-secret-of-more-than-32-characters"
    assert not secure_cookies(Settings(secret_key=secret))  # type: ignore[arg-type]
    assert secure_cookies(Settings(secret_key=secret, public_url="https://grader.example.edu"))  # type: ignore[arg-type]


def test_an_over_long_idempotency_key_is_refused_in_words(site: World) -> None:
    log_in(site.client, site.emails["owner"])
    token = csrf_of(site.client.get(f"/assignments/{site.assignment}").text)
    answer = site.client.post(
        f"/assignments/{site.assignment}/submit",
        files=[("files", ("layers.py", b"x = 1\n"))],
        headers={"X-CSRF-Token": token, "Idempotency-Key": "k" * 400},
    )
    assert answer.status_code == 422 and "Idempotency-Key is longer than 200" in answer.json()["detail"]


@pytest.mark.parametrize(
    "damage",
    [
        {"assignment": "a-catalog-this-version-lacks"},
        {"questions": None},
        {"checks": [{"id": "x", "status": "failed", "errors": {"dx": 1.0}, "score": None}]},
    ],
)
def test_a_report_of_another_shape_still_shows(site: World, damage: dict[str, object]) -> None:
    with site.app.state.sessions.begin() as session:
        run = session.scalar(select(GradingRun).where(GradingRun.submission_id == site.submission))
        assert run is not None and run.report is not None
        run.report = json.dumps({**json.loads(run.report), **damage})
    log_in(site.client, site.emails["instructor"])
    page = site.client.get(f"/submissions/{site.submission}")
    assert page.status_code == 200


def test_live_streams_are_capped_per_browser_and_in_all() -> None:
    slots = StreamSlots(most=3, per_browser=2)
    for browser in ("a", "a", "b"):
        assert slots.may_open(browser)
        slots.opened(browser)
    assert not slots.may_open("a") and not slots.may_open("c")  # a's two, and three in all
    slots.closed("a")
    assert slots.may_open("a") and slots.may_open("c")
    slots.closed("a")
    slots.closed("b")
    assert slots.total == 0 and slots.by_browser == {}


def _events_scope(site: World, *, spec_version: str) -> dict[str, Any]:
    """The ASGI scope of the owner's browser asking for the live stream of their submission."""
    log_in(site.client, site.emails["owner"])
    cookie = f"grader_session={site.client.cookies['grader_session']}".encode()
    path = f"/submissions/{site.submission}/events"
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": spec_version},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"cookie", cookie)],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def test_a_stream_gives_its_slot_back_when_the_browser_leaves_before_it_starts(site: World) -> None:
    """The browser is gone before the first byte: the server learns it as a disconnect message (ASGI
    before 2.4) or as a failed send (2.4): the stream's body never starts, and its slot comes back."""
    before = (STREAMS.total, dict(STREAMS.by_browser))

    async def gone() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def stalled_send(message: dict[str, Any]) -> None:
        await anyio.sleep(30)  # the socket's buffer is full: the disconnect is seen first

    async def broken_send(message: dict[str, Any]) -> None:
        raise OSError("connection reset by peer")

    portal = site.client.portal
    assert portal is not None
    portal.call(site.app, _events_scope(site, spec_version="2.3"), gone, stalled_send)
    assert (STREAMS.total, STREAMS.by_browser) == before
    with pytest.raises(Exception):  # noqa: B017 - whichever the framework makes of the dead socket
        portal.call(site.app, _events_scope(site, spec_version="2.4"), gone, broken_send)
    assert (STREAMS.total, STREAMS.by_browser) == before


def test_logging_out_ends_the_session_on_every_device(site: World) -> None:
    log_in(site.client, site.emails["owner"])
    stolen = site.client.cookies["grader_session"]
    token = csrf_of(site.client.get("/").text)
    assert site.client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    with TestClient(site.app) as other:
        other.cookies.set("grader_session", stolen)
        assert other.get("/", follow_redirects=False).status_code == 303  # to the login page
        me = other.get("/api/v1/users/me", headers={"Authorization": f"Bearer {stolen}"})
        assert me.status_code == 401
    log_in(site.client, site.emails["owner"])  # a login just after works
    assert site.client.get("/", follow_redirects=False).status_code == 200
