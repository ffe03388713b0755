"""Fixtures shared across the test tree: a real Docker client and the real sandbox image, a real PostgreSQL
server, and a fresh database on each backend.

Every test that uses a Docker fixture, directly or through another fixture, is marked `docker`, so that
`pytest -m "not docker and not slow"` is a quick loop without the engine; tests that reach Docker
otherwise (the CLI's default sandbox) carry the mark themselves. Likewise every test that needs the
PostgreSQL server (`postgres_url`, or the `postgresql` half of `database_url`) is marked `postgres`, and every
test that drives Chromium (tests/web/conftest.py's `browser` and `page`) is marked `browser`.
"""

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from grader.sandbox_client.images import build_sandbox_image

# live_service (tests/web/conftest.py) is a `grader serve` grading in Docker.
DOCKER_FIXTURES = frozenset({"docker_client", "sandbox_image", "live_service"})
POSTGRES_FIXTURES = frozenset({"postgres_url"})
BROWSER_FIXTURES = frozenset({"browser", "page"})
POSTGRES_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "postgres.sh"
# A server already running elsewhere (its SQLAlchemy URL); the suite then starts none of its own.
POSTGRES_URL_ENV = "GRADER_TEST_POSTGRES_URL"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        # fixturenames is the closure: the fixtures of the test's fixtures too.
        if DOCKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.docker)
        if POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)
        if BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A client of the local Docker engine; Docker is the sandbox, so its absence is a failure, not a skip."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as error:
        pytest.fail(f"cannot reach Docker ({error}); start the Docker daemon, or check DOCKER_HOST")
    yield client
    client.close()


@pytest.fixture(scope="session")
def sandbox_image(docker_client: docker.DockerClient) -> str:
    """The tag of the sandbox image, built once (minutes the first time, a lookup after that)."""
    return build_sandbox_image(docker_client, log=_log)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _postgres_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(POSTGRES_SCRIPT), *args], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The SQLAlchemy URL of the database `grader_test` on a real PostgreSQL server.

    `$GRADER_TEST_POSTGRES_URL` if set; otherwise scripts/postgres.sh starts Debian's server on a throwaway
    data directory and a free port for the session, and removes both at its end. PostgreSQL is the
    deployment database, so its absence is a failure, not a skip.
    """
    if url := os.environ.get(POSTGRES_URL_ENV):
        yield url
        return
    # Directly under /tmp, not pytest's tmp_path: the server runs as `postgres` when we are root, and
    # pytest's base directory is closed to other users; the path also stays short enough for the socket.
    data_dir = tempfile.mkdtemp(prefix="grader-pg-", dir="/tmp")
    started = time.monotonic()
    for _attempt in range(3):  # another process may take the free port before the server binds it
        result = _postgres_script("start", data_dir, str(_free_port()))
        if result.returncode == 0:
            break
    else:
        _postgres_script("stop", data_dir)
        pytest.fail(
            f"cannot start PostgreSQL with {POSTGRES_SCRIPT} (exit {result.returncode}):\n{result.stderr}"
            f"install Debian's server (apt-get install postgresql), or set {POSTGRES_URL_ENV}",
            pytrace=False,
        )
    _log(f"PostgreSQL started in {time.monotonic() - started:.2f} s on {data_dir}")
    try:
        yield result.stdout.strip().splitlines()[-1]
    finally:
        stopped = _postgres_script("stop", data_dir)
        if stopped.returncode != 0:
            _log(f"stopping PostgreSQL on {data_dir} failed:\n{stopped.stderr}")


def _admin_connection(server: URL) -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit connection to the server's own database (CREATE/DROP DATABASE need autocommit)."""
    return psycopg.connect(
        host=server.host,
        port=server.port,
        user=server.username,
        password=server.password,
        dbname=server.database,
        autocommit=True,
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The SQLAlchemy URL of an empty database of the test's own, once on each backend.

    SQLite: a file under tmp_path. PostgreSQL: a database created for the test on the session's server
    (from template0, about 100 ms) and dropped afterwards, even with connections still open to it.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/grader.db"
        return
    server = make_url(request.getfixturevalue("postgres_url"))
    name = f"t_{secrets.token_hex(8)}"
    with _admin_connection(server) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with _admin_connection(server) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
