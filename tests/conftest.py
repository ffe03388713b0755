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
# Slow tests of files whose marks are kept here: file -> test function -> why it is slow.
SLOW: dict[str, dict[str, str]] = {
    "tests/sandbox/test_probe_servers.py": {
        "test_grading_with_and_without_servers_gives_the_same_report": "grades six submissions twice",
        "test_every_probe_outcome_is_the_same_with_and_without_servers": "two submissions' probes, twice",
        "test_with_the_state_check_weakened_the_witness_sees_the_change": "a runner per change, twice",
        "test_a_probe_that_changes_its_process_does_not_reach_the_next": "a runner per change",
        "test_a_probe_that_joins_the_runners_process_group_times_out_alone": "waits out a time limit",
    },
    "tests/sandbox/test_runner_protocol.py": {
        "test_a_function_that_loops_forever_times_out_alone": "waits out a time limit",
        "test_an_endless_loop_at_import_fails_the_probes_of_that_module_only": "waits out a time limit",
    },
}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        # fixturenames is the closure: the fixtures of the test's fixtures too.
        if DOCKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.docker)
        path, _, function = item.nodeid.split("[")[0].partition("::")
        if function in SLOW.get(path, {}):
            item.add_marker(pytest.mark.slow(reason=SLOW[path][function]))
    for path, functions in SLOW.items():
        module = next((item.module for item in items if item.nodeid.startswith(f"{path}::")), None)
        for name in functions:
            if module is not None and not hasattr(module, name):  # renamed: its mark would silently go
                raise pytest.UsageError(f"tests/conftest.py marks {path}::{name} slow: no such test")


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
