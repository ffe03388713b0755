"""The Docker executor and its pool, against the real engine: hardening, single use, cleanup."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pytest

from grader import EXAMPLE_SUBMISSION
from grader.assignments import get_assignment
from grader.engine.grading import grade_submission
from grader.intake.uploads import load_submission
from grader.sandbox_client.docker_executor import CONTAINER_LABEL, DockerExecutor, container_options
from grader.sandbox_client.pool import ContainerPool
from grader.settings import Settings

ASSIGNMENT = get_assignment("cs231n-a2-fc")
CORRECT = EXAMPLE_SUBMISSION
LIMITS = Settings().container_limits()


OWNER = f"tests-docker-executor-{os.getpid()}"


def leftover_containers(client: Any) -> list[Any]:
    """The containers this test file started and that still exist (other runs use other owners)."""
    return client.containers.list(all=True, filters={"label": f"{CONTAINER_LABEL}={OWNER}"})


def test_container_is_locked_down(
    docker_client: Any, sandbox_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADER_SECRET_KEY", "canary-secret-4d1f")
    limits = LIMITS
    container = docker_client.containers.create(**container_options(sandbox_image, limits))
    try:
        host = container.attrs["HostConfig"]
        config = container.attrs["Config"]
        assert host["NetworkMode"] == "none"
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert host["SecurityOpt"] == ["no-new-privileges"]
        assert host["PidsLimit"] == limits.pids
        assert host["IpcMode"] == "private"
        assert host["Sysctls"] == {
            "kernel.shmmni": "0",
            "kernel.msgmni": "0",
            "kernel.sem": "0 0 0 0",
            "fs.mqueue.queues_max": "0",
        }
        assert host["Memory"] == host["MemorySwap"] == limits.memory_bytes
        assert host["NanoCpus"] == int(limits.cpus * 1e9)
        assert {u["Name"] for u in host["Ulimits"]} == {"nofile", "fsize", "core"}
        assert set(host["Tmpfs"]) == {"/scratch", "/tmp"}
        assert all("noexec" in flags and "size=" in flags for flags in host["Tmpfs"].values())
        assert host["Binds"] in (None, [])  # nothing of the host's filesystem is mounted
        assert config["User"] == "65534:65534"
        assert config["Cmd"][:2] == ["python3", "-I"]
        assert not any("canary-secret" in variable or "GRADER" in variable for variable in config["Env"])
    finally:
        container.remove(force=True)


def test_grading_leaves_no_container_behind(docker_client: Any, sandbox_image: str) -> None:
    report = grade_submission(
        load_submission(CORRECT),
        ASSIGNMENT,
        seed=1,
        executor=DockerExecutor(docker_client, sandbox_image, LIMITS, owner=OWNER),
    )
    assert report.score == report.max_score
    assert report.sandbox == {"executor": "docker", "image": sandbox_image, "runtime": "default"}
    assert leftover_containers(docker_client) == []


def test_pool_hands_out_each_container_once_and_refills(docker_client: Any, sandbox_image: str) -> None:
    options = container_options(sandbox_image, LIMITS, owner=OWNER)
    with ContainerPool(docker_client, options, size=2) as pool:
        assert pool.wait_until_full(timeout=60)
        waiting = {c.id for c in leftover_containers(docker_client)}
        assert len(waiting) == 2
        assert all(c.status == "running" for c in leftover_containers(docker_client))
        executor = DockerExecutor(docker_client, sandbox_image, LIMITS, pool=pool, owner=OWNER)
        for seed in (1, 2):
            report = grade_submission(load_submission(CORRECT), ASSIGNMENT, seed=seed, executor=executor)
            assert report.score == report.max_score
        assert pool.wait_until_full(timeout=60)
        now_waiting = {c.id for c in leftover_containers(docker_client)}
        assert len(now_waiting) == 2 and not (now_waiting & waiting), "used containers are never reused"
    assert leftover_containers(docker_client) == []


def test_pool_without_waiting_containers_starts_one(docker_client: Any, sandbox_image: str) -> None:
    options = container_options(sandbox_image, LIMITS, owner=OWNER)
    with ContainerPool(docker_client, options, size=1) as pool:
        first, second = (
            pool.take(),
            pool.take(),
        )  # the second cannot have been refilled yet, or can: both work
        try:
            assert first.container.id != second.container.id
        finally:
            first.discard()
            second.discard()
    assert leftover_containers(docker_client) == []


def test_unreachable_docker_is_reported_not_graded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from grader.cli import app
    from grader.settings import get_settings

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["grade", str(CORRECT), "--json"])
    assert result.exit_code == 3
    assert result.stdout == ""
    assert "Start the Docker daemon" in result.stderr and "DOCKER_HOST" in result.stderr
    assert os.environ["DOCKER_HOST"].endswith("no-docker.sock")


def test_process_sandbox_warns(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from grader.cli import app

    result = CliRunner().invoke(app, ["grade", str(CORRECT), "--sandbox", "process", "--json", "--seed", "1"])
    assert result.exit_code == 0
    assert "development only" in result.stderr


def test_containers_of_dead_processes_are_removed(docker_client: Any, sandbox_image: str) -> None:
    import socket

    from grader.sandbox_client.docker_executor import default_owner, remove_stale_containers

    host = socket.gethostname()
    owners = {
        "dead": f"{host}:{2**22 + 12345}:0000",  # above the kernel's pid_max: never alive
        "earlier_self": f"{host}:{os.getpid()}:0000",  # our pid, but another process's token
        "alive": default_owner(),
        "other_host": f"another-host-{os.getpid()}:1:0000",
    }
    options = container_options(sandbox_image, LIMITS)
    made = {
        name: docker_client.containers.create(**{**options, "labels": {CONTAINER_LABEL: owner}})
        for name, owner in owners.items()
    }
    try:
        assert remove_stale_containers(docker_client) >= 2
        remaining = {
            c.id for c in docker_client.containers.list(all=True, filters={"label": CONTAINER_LABEL})
        }
        assert made["dead"].id not in remaining and made["earlier_self"].id not in remaining
        assert made["alive"].id in remaining and made["other_host"].id in remaining
    finally:
        for container in made.values():
            with contextlib.suppress(Exception):
                container.remove(force=True)


def test_the_pool_outlives_an_engine_outage(tmp_path: Path, sandbox_image: str) -> None:
    import time

    import docker

    unreachable = docker.DockerClient(base_url=f"unix://{tmp_path}/no-engine.sock", version="1.41")
    pool = ContainerPool(unreachable, container_options(sandbox_image, LIMITS), size=1)
    try:
        time.sleep(1.5)  # it has failed to start a container at least once by now
        assert pool._filler.is_alive(), "the refill thread must keep trying, not die"
        from grader.engine.executor import SandboxUnavailable

        with pytest.raises(SandboxUnavailable):
            pool.take()  # nothing waits, and starting one now fails: said as the sandbox being unavailable
    finally:
        pool.close()
    assert not pool._filler.is_alive()
