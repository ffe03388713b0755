"""Invite links (grader/service/accounts/invites.py) on both databases: a link sets the password of a user
added without one, once, until it expires; a used, expired, tampered or foreign one is refused saying why;
and `grader users invite EMAIL` prints a link that works."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from grader.cli import app
from grader.service.accounts.invites import (
    InviteRefused,
    invite_expires_at,
    invite_path,
    invite_url,
    invited_user,
    issue_invite,
    redeem_invite,
)
from grader.service.accounts.models import User
from grader.service.accounts.service import create_user, sign_in
from grader.service.accounts.tokens import issue_access_token
from grader.service.db import make_engine, session_factory
from grader.service.errors import Forbidden, InvalidInput
from grader.service.migrate import upgrade
from grader.settings import Settings, get_settings

SECRET = "an-invite-test-secret-of-more-than-32-characters"
LIFETIME = timedelta(hours=72)
ISSUED = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


def passwordless(session: Session, email: str = "sam@example.org") -> User:
    """A user as a roster import or POST /members makes them."""
    return create_user(session, email=email, name="Sam", password=None)


def invite(user: User, now: datetime = ISSUED) -> str:
    return issue_invite(user, secret=SECRET, lifetime=LIFETIME, now=now)


def redeem(
    session: Session, token: str, password: str = PASSWORD, now: datetime = ISSUED + timedelta(hours=1)
) -> User:
    return redeem_invite(session, token, password, secret=SECRET, now=now)


def test_a_link_sets_the_password_and_then_sign_in_works(session: Session) -> None:
    user = passwordless(session)
    assert sign_in(session, email="sam@example.org", password=PASSWORD) is None

    assert redeem(session, invite(user)) is user
    session.commit()

    assert user.password_hash is not None and user.password_hash.startswith("$argon2")
    assert sign_in(session, email="SAM@example.org", password=PASSWORD) is user
    assert sign_in(session, email="sam@example.org", password="wrong horse battery") is None


def test_the_same_link_a_second_time_is_refused_and_so_is_any_earlier_one(session: Session) -> None:
    user = passwordless(session)
    earlier, link = invite(user), invite(user, now=ISSUED + timedelta(minutes=5))
    redeem(session, link)

    for used in (link, earlier):
        with pytest.raises(InviteRefused, match="used already") as refused:
            redeem(session, used, "another password")
        assert refused.value.reason == "used"
    assert sign_in(session, email="sam@example.org", password=PASSWORD) is user  # the first one stays


def test_a_link_used_by_a_request_at_the_same_moment_is_refused(session: Session) -> None:
    """Two requests read the user before either sets the password: the second one's update finds the hash
    changed under it."""
    user = passwordless(session)
    link = invite(user)
    assert invited_user(session, link, secret=SECRET, now=ISSUED) is user
    session.execute(  # the other request, behind the ORM's back: `user` still has no hash here
        update(User)
        .where(User.id == user.id)
        .values(password_hash="$argon2id$theirs")
        .execution_options(synchronize_session=False)
    )

    with pytest.raises(InviteRefused, match="used already"):
        redeem(session, link)
    session.refresh(user)
    assert user.password_hash == "$argon2id$theirs"


@pytest.mark.parametrize("late", [LIFETIME, LIFETIME + timedelta(days=30)])
def test_an_expired_link_is_refused(session: Session, late: timedelta) -> None:
    user = passwordless(session)
    link = invite(user)
    assert redeem(session, link, now=ISSUED + LIFETIME - timedelta(seconds=1)) is user  # the last second

    user = passwordless(session, "kim@example.org")
    with pytest.raises(InviteRefused, match="expired") as refused:
        redeem(session, invite(user), now=ISSUED + late)
    assert refused.value.reason == "expired" and user.password_hash is None
    assert invite_expires_at(link) == ISSUED + LIFETIME


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    claims: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def _with_claims(token: str, **changes: object) -> str:
    """The token with its claims changed and its signature kept: what someone editing a link makes."""
    header, _, signature = token.split(".")
    payload = json.dumps({**_claims(token), **changes}).encode()
    return ".".join([header, base64.urlsafe_b64encode(payload).rstrip(b"=").decode(), signature])


TAMPERINGS = {
    "another user": lambda token, other: _with_claims(token, sub=other.id),
    "a later expiry": lambda token, other: _with_claims(token, exp=_claims(token)["exp"] + 10**6),
    "a changed signature": lambda token, other: token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"),
    "cut short": lambda token, other: token[: len(token) // 2],
    "another secret": lambda token, other: issue_invite(
        other, secret="not-the-service-secret-but-long-enough", lifetime=LIFETIME, now=ISSUED
    ),
    "an access token": lambda token, other: issue_access_token(
        other.id, secret=SECRET, lifetime=LIFETIME, now=ISSUED
    ),
    "no fingerprint": lambda token, other: jwt.encode(
        {"sub": other.id, "exp": ISSUED + LIFETIME, "typ": "invite"}, SECRET, algorithm="HS256"
    ),
    "unsigned": lambda token, other: jwt.encode({**_claims(token), "sub": other.id}, None, algorithm="none"),
    "empty": lambda token, other: "",
    "not a token": lambda token, other: "../../etc/passwd",
}


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
def test_a_tampered_link_is_refused(session: Session, tampering: str) -> None:
    user, other = passwordless(session), passwordless(session, "kim@example.org")
    link = TAMPERINGS[tampering](invite(user), other)

    with pytest.raises(InviteRefused, match="not valid") as refused:
        redeem(session, link)
    assert refused.value.reason == "bad" and isinstance(refused.value, Forbidden)
    assert user.password_hash is None and other.password_hash is None


def test_a_link_of_a_deleted_account_is_refused(session: Session) -> None:
    user = passwordless(session)
    link = invite(user)
    session.delete(user)
    session.flush()
    with pytest.raises(InviteRefused, match="no longer exists"):
        redeem(session, link)


def test_a_too_short_password_is_refused_and_the_link_still_works(session: Session) -> None:
    user = passwordless(session)
    link = invite(user)
    with pytest.raises(InvalidInput, match="at least 8 characters"):
        redeem(session, link, "short")
    assert user.password_hash is None
    assert redeem(session, link, "12345678") is user


def test_a_link_for_a_user_with_a_password_sets_a_new_one(session: Session) -> None:
    """What `grader users invite` gives someone who forgot theirs: the old password works until it is used."""
    user = create_user(session, email="ada@example.org", name="Ada", password="the old password")
    link = invite(user)
    assert sign_in(session, email="ada@example.org", password="the old password") is user

    redeem(session, link, "the new password")
    assert sign_in(session, email="ada@example.org", password="the old password") is None
    assert sign_in(session, email="ada@example.org", password="the new password") is user
    with pytest.raises(InviteRefused, match="used already"):
        redeem(session, link, "a third password")


def test_the_link_is_the_invite_path_under_the_public_url() -> None:
    assert invite_path("a.b-c_d") == "/invite/a.b-c_d"
    assert (
        invite_url("https://grader.example.org/cs231n/", "t") == "https://grader.example.org/cs231n/invite/t"
    )
    assert Settings().public_url == "http://localhost:8000" and Settings().invite_hours == 72
    with pytest.raises(ValueError, match="public_url"):
        Settings(public_url="grader.example.org")


# ---- grader users invite ---------------------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("GRADER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GRADER_SECRET_KEY", SECRET)
    for name in ("GRADER_DATABASE_URL", "GRADER_PUBLIC_URL", "GRADER_INVITE_HOURS"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


@pytest.fixture
def cli_sessions(data_dir: Path) -> Iterator[sessionmaker[Session]]:
    url = get_settings().resolved_database_url()
    upgrade(url)
    engine = make_engine(url)
    yield session_factory(engine)
    engine.dispose()


def test_the_cli_prints_a_link_that_works(cli_sessions: sessionmaker[Session]) -> None:
    with cli_sessions.begin() as session:
        passwordless(session)

    result = CliRunner().invoke(
        app, ["users", "invite", "Sam@Example.org", "--base-url", "https://g.example.org/"]
    )

    assert result.exit_code == 0, result.output
    link = result.stdout.strip()
    assert link.startswith("https://g.example.org/invite/") and "\n" not in link
    assert "sam@example.org" in result.stderr and "once, until" in result.stderr
    token = link.removeprefix("https://g.example.org/invite/")
    with cli_sessions.begin() as session:
        user = redeem_invite(session, token, PASSWORD, secret=SECRET)
    with cli_sessions() as session:
        assert sign_in(session, email="sam@example.org", password=PASSWORD) is not None
    assert abs(invite_expires_at(token) - datetime.now(UTC) - LIFETIME) < timedelta(minutes=1)
    assert user.email == "sam@example.org"


def test_the_cli_link_starts_with_the_public_url_and_lasts_the_invite_hours(
    cli_sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADER_PUBLIC_URL", "https://grader.cs.example.edu")
    monkeypatch.setenv("GRADER_INVITE_HOURS", "2")
    get_settings.cache_clear()
    with cli_sessions.begin() as session:
        passwordless(session)

    result = CliRunner().invoke(app, ["users", "invite", "sam@example.org"])

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("https://grader.cs.example.edu/invite/")
    token = result.stdout.strip().rsplit("/", 1)[1]
    assert abs(invite_expires_at(token) - datetime.now(UTC) - timedelta(hours=2)) < timedelta(minutes=1)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["nobody@example.org"], "no user has the email nobody@example.org"),
        (["sam@example.org", "--base-url", "grader.example.org"], "is not a base URL"),
    ],
)
def test_the_cli_refuses_an_unknown_email_or_a_bad_base_url(
    cli_sessions: sessionmaker[Session], arguments: list[str], message: str
) -> None:
    with cli_sessions.begin() as session:
        passwordless(session)

    result = CliRunner().invoke(app, ["users", "invite", *arguments])

    assert result.exit_code == 2 and message in result.stderr
    assert result.stdout == ""
