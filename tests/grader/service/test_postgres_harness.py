"""The database harness itself: a real PostgreSQL server, and an empty database of each test's own on both
backends (the fixtures are in tests/conftest.py, the server's script in scripts/postgres.sh)."""

import os
import re
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "postgres.sh"


def _installed_major() -> str:
    """The newest major version of Debian's server binaries, as scripts/postgres.sh picks it."""
    versions = [path.name for path in Path("/usr/lib/postgresql").glob("*") if (path / "bin").is_dir()]
    return max(versions, key=int)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=True
    )


def _table_names(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return sorted(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_the_server_is_a_real_postgresql(postgres_url: str) -> None:
    url = make_url(postgres_url)
    assert url.drivername == "postgresql+psycopg"
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database
    ) as connection:
        row = connection.execute("select version()").fetchone()
    assert row is not None
    version: str = row[0]
    # A server of the caller's own may be any version; the one the suite starts is Debian's newest.
    external = os.environ.get("GRADER_TEST_POSTGRES_URL")
    expected = "PostgreSQL " if external else f"PostgreSQL {_installed_major()}."
    assert version.startswith(expected), version


def test_database_url_is_an_empty_database(database_url: str) -> None:
    assert _table_names(database_url) == []
    backend = make_url(database_url).get_backend_name()
    assert backend in {"sqlite", "postgresql"}


@pytest.mark.parametrize("name", ["first", "second"])
def test_each_test_has_a_database_of_its_own(database_url: str, name: str) -> None:
    """Each instance leaves its table behind: the other would see it if the two shared a database."""
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f"CREATE TABLE probe_{name} (id INTEGER PRIMARY KEY)"))
        assert sa.inspect(engine).get_table_names() == [f"probe_{name}"]
    finally:
        engine.dispose()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory of the test's own (directly under /tmp: see the `postgres_url` fixture)."""
    path = Path(tempfile.mkdtemp(prefix="grader-pg-test-", dir="/tmp"))
    try:
        yield path
    finally:
        _script("stop", str(path))


@pytest.mark.postgres
def test_start_twice_reuses_the_running_server_and_stop_removes_it(data_dir: Path) -> None:
    port = _free_port()
    first = _script("start", str(data_dir), str(port)).stdout.splitlines()[-1]
    assert first == f"postgresql+psycopg://postgres@127.0.0.1:{port}/grader_test"
    pid = (data_dir / "postmaster.pid").read_text().splitlines()[0]

    second = _script("start", str(data_dir), str(port))
    assert second.stdout.splitlines()[-1] == first
    assert (data_dir / "postmaster.pid").read_text().splitlines()[0] == pid  # the same postmaster

    # Another port on the same directory still finds the running server, and says so.
    third = _script("start", str(data_dir), str(_free_port()))
    assert third.stdout.splitlines()[-1] == first
    assert re.search(r"reusing the server already running", third.stderr)
    assert _table_names(first) == []

    _script("stop", str(data_dir))
    assert not data_dir.exists()
    _script("stop", str(data_dir))  # stopping again is no error
