"""`grader db upgrade` and `grader users create`: the database on its embedded default, the password read
from standard input only and stored as an argon2 hash, and clear refusals that leave nothing behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from pydantic import ValidationError
from sqlalchemy import select
from typer.testing import CliRunner

from grader.cli import app
from grader.service.accounts.models import User
from grader.service.accounts.passwords import verify_password
from grader.service.db import make_engine, session_factory
from grader.service.migrate import alembic_config, current_revision
from grader.settings import EXAMPLE_SECRET, Settings, get_settings


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("GRADER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("GRADER_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


def users(data_dir: Path) -> list[User]:
    engine = make_engine(f"sqlite:///{data_dir / 'grader.db'}")
    with session_factory(engine)() as session:
        found = list(session.scalars(select(User).order_by(User.created_at)))
    engine.dispose()
    return found


def create(email: str, password: str, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["users", "create", email, "--name", "Ada", *extra], input=password + "\n"
    )
    return result.exit_code, result.output


def test_db_upgrade_makes_the_embedded_database_in_the_data_dir(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None and current_revision(f"sqlite:///{data_dir / 'grader.db'}") == head
    assert f"revision {head}" in result.output


def test_a_user_gets_an_argon2_hash_of_the_password_from_stdin(data_dir: Path) -> None:
    code, output = create("Ada@Example.org", "correct horse", "--admin", "--password-stdin")

    assert code == 0, output
    (user,) = users(data_dir)
    assert (user.email, user.email_key, user.is_admin) == ("Ada@Example.org", "ada@example.org", True)
    assert user.password_hash is not None and user.password_hash.startswith("$argon2")
    assert verify_password("correct horse", user.password_hash)
    assert not verify_password("wrong horse", user.password_hash)
    assert "correct horse" not in output


@pytest.mark.parametrize(
    "email, password, flags, message",
    [
        ("ada@example.org", "correct horse", [], "--password-stdin"),  # never from the command line
        ("ADA@example.ORG", "correct horse", ["--password-stdin"], "exists already"),
        ("not-an-email", "correct horse", ["--password-stdin"], "not an email address"),
        ("bob@example.org", "short", ["--password-stdin"], "at least 8 characters"),
    ],
)
def test_refusals_say_why_and_leave_nothing_behind(
    data_dir: Path, email: str, password: str, flags: list[str], message: str
) -> None:
    assert create("ada@example.org", "correct horse", "--password-stdin")[0] == 0

    code, output = create(email, password, *flags)

    assert code == 2 and message in output
    assert [user.email for user in users(data_dir)] == ["ada@example.org"]


def test_production_refuses_a_missing_or_default_secret_and_says_what_to_set() -> None:
    with pytest.raises(ValidationError, match="GRADER_SECRET_KEY"):
        Settings(env="production")
    with pytest.raises(ValidationError, match="GRADER_SECRET_KEY"):
        Settings(env="production", secret_key="too-short")
    assert Settings(env="production", secret_key="x" * 40).env == "production"


def test_the_default_database_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url() == f"sqlite:///{tmp_path.resolve() / 'grader.db'}"
    assert (
        Settings(database_url="postgresql+psycopg://h/db").resolved_database_url()
        == "postgresql+psycopg://h/db"
    )


def test_grader_serve_in_production_without_a_secret_refuses_to_start_and_says_what_to_set(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADER_ENV", "production")
    monkeypatch.delenv("GRADER_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["serve", "--workers", "0"])
    assert result.exit_code == 2
    assert "GRADER_SECRET_KEY" in result.output and "32 characters" in result.output
    assert not data_dir.exists()  # nothing was started or created


def test_db_upgrade_makes_the_first_admin_from_the_environment_once(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import create_engine, text

    monkeypatch.setenv("GRADER_ADMIN_EMAIL", "Root@Example.org")
    monkeypatch.setenv("GRADER_ADMIN_PASSWORD", "a first password")
    first = CliRunner().invoke(app, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert "created the first admin Root@Example.org" in first.output
    monkeypatch.setenv("GRADER_ADMIN_PASSWORD", "another password")
    again = CliRunner().invoke(app, ["db", "upgrade"])
    assert again.exit_code == 0 and "created the first admin" not in again.output
    engine = create_engine(f"sqlite:///{data_dir / 'grader.db'}")
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT email, is_admin FROM users")).all()
    engine.dispose()
    assert [(email, bool(admin)) for email, admin in rows] == [("Root@Example.org", True)]
    from grader.service.accounts.service import sign_in
    from grader.service.db import make_engine, session_factory

    engine = make_engine(f"sqlite:///{data_dir / 'grader.db'}")
    with session_factory(engine)() as session:
        assert sign_in(session, email="root@example.org", password="a first password") is not None
    engine.dispose()


def test_db_upgrade_refuses_bad_settings_in_words(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADER_ENV", "production")
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 2
    assert "cannot upgrade" in result.output and "Traceback" not in result.output
    assert not (data_dir / "grader.db").exists()


@pytest.mark.parametrize(
    ("command", "doing"),
    [
        (["db", "upgrade"], "cannot upgrade"),
        (["serve"], "cannot start"),
        (["worker"], "cannot start"),
        (["users", "invite", "ada@example.org"], "cannot invite"),
    ],
)
@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        (EXAMPLE_SECRET, "still .env.example's value"),
        ("", "GRADER_SECRET_KEY is not set"),
        ("short-but-secret", "GRADER_SECRET_KEY has 16 characters"),
    ],
)
def test_every_service_command_refuses_a_public_or_short_secret_in_words(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], doing: str, secret: str, problem: str
) -> None:
    monkeypatch.setenv("GRADER_ENV", "production")
    if secret:
        monkeypatch.setenv("GRADER_SECRET_KEY", secret)
    else:
        monkeypatch.delenv("GRADER_SECRET_KEY", raising=False)
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    assert doing in result.output and problem in result.output, result.output
    assert "secrets.token_urlsafe(48)" in result.output  # how to make a good one
    assert "Traceback" not in result.output and "pydantic" not in result.output
    if secret:
        assert secret not in result.output.replace(".env.example", "")  # a secret is never printed
    assert not (data_dir / "grader.db").exists()


def test_a_setting_of_the_wrong_kind_is_named_not_echoed(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADER_API_CONCURRENCY", "999")
    monkeypatch.setenv("GRADER_TIME_SCALE", "fast[bold]")
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 2, result.output
    assert "GRADER_API_CONCURRENCY: Input should be less than or equal to 32" in result.output
    assert "GRADER_TIME_SCALE: Input should be a valid number" in result.output
    assert "999" not in result.output and "fast" not in result.output
