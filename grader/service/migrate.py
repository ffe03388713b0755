"""Schema migrations with Alembic: the service upgrades its database when it starts; `grader db upgrade`
does it by hand. The migrations live in grader/service/migrations/versions."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from grader.service.db import make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Alembic's `context` is one module-level object: two upgrades on threads of one process (`grader serve`
# starts the API and the workers, and both upgrade) would run in it at once and break each other.
_ONE_UPGRADE_AT_A_TIME = threading.Lock()
# Processes on several machines may start at once against one PostgreSQL: one migrates, the others wait.
_ADVISORY_LOCK = 0x67726164  # "grad"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision` (creating a SQLite file's folder if need be)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        with _ONE_UPGRADE_AT_A_TIME, engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
