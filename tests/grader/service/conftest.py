"""Fixtures of the service's tests: sessions on a migrated database of each backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from grader.service.db import make_engine, session_factory
from grader.service.migrate import upgrade


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on the test's own database (SQLite, then PostgreSQL), brought to the latest schema."""
    upgrade(database_url)
    engine = make_engine(database_url)
    yield session_factory(engine)
    engine.dispose()
