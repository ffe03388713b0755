"""Alembic's environment: the models' metadata, and the connection the caller hands over (migrate.py)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

import grader.service.models as models
from grader.service.db import make_engine

config = context.config
target_metadata = models.Base.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection: Connection) -> None:
    # render_as_batch: SQLite alters a table by copying it; Alembic does that for us.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
