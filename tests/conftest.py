"""Fixtures shared across the test tree: a real Docker client and the real sandbox image."""

import sys
from collections.abc import Iterator

import docker
import docker.errors
import pytest

from grader.sandbox_client.images import build_sandbox_image


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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
