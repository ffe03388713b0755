"""Fixtures shared across the test tree: a real Docker client and the real sandbox image.

Every test that uses either fixture, directly or through another fixture, is marked `docker`, so that
`pytest -m "not docker and not slow"` is a quick loop without the engine; tests that reach Docker
otherwise (the CLI's default sandbox) carry the mark themselves.
"""

import sys
from collections.abc import Iterator

import docker
import docker.errors
import pytest

from grader.sandbox_client.images import build_sandbox_image

DOCKER_FIXTURES = frozenset({"docker_client", "sandbox_image"})


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        # fixturenames is the closure: the fixtures of the test's fixtures too.
        if DOCKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.docker)


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
