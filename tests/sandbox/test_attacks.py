"""Hostile submissions graded through the real Docker sandbox: each attack fails alone, leaks nothing,
changes no other grade and harms neither the host nor the service.

The attacks are the table in tests/fixtures/submissions/attacks.py. Each is graded against a reduced
catalog (the attacked function's checks plus control checks of other functions) to keep the file fast.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from grader.assignments import get_assignment
from grader.cli import app
from grader.engine.assignment import Assignment
from grader.engine.grading import grade_submission
from grader.engine.report import Report
from grader.intake.uploads import load_submission
from grader.sandbox_client.docker_executor import (
    CONTAINER_LABEL,
    DockerExecutor,
    default_owner,
    sandbox_environment,
)
from grader.settings import Settings, get_settings
from tests.fixtures.submissions import attacks

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "submissions"

ASSIGNMENT = get_assignment("cs231n-a2-fc")
SETTINGS = Settings()
SEED = 11
REFERENCE_CANARY = "REFERENCE-CANARY-7f3e"  # planted in reference/layers.py
SECRET = "canary-s3cr3t-91b7e2"  # in the service's environment while every attack is graded
OWNER = f"tests-attacks-{os.getpid()}"
WALL_SECONDS = 60.0  # a bound, not a benchmark: each attack takes a few seconds
# What text shown to a person must never contain: C0 controls but tab and newline, DEL, C1 controls.
UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Names the attacks write in their (container's) working directory, /tmp and /scratch: none may
# appear on the host.
HOST_PLACES = (Path("/tmp"), Path.cwd(), FIXTURES)
PLANTED_NAMES = ("fill-*.bin", "big.bin", "p[0-9]*.json", "p[0-9]*.npz", "daemon-*.txt", "thread-*.txt")


def reduced(check_ids: Sequence[str]) -> Assignment:
    """The assignment with only the checks `check_ids`."""
    wanted = set(check_ids)
    missing = wanted - {check.id for check in ASSIGNMENT.build_checks(SEED)}
    assert not missing, f"unknown check ids {missing}"
    return dataclasses.replace(
        ASSIGNMENT, build_checks=lambda seed: [c for c in ASSIGNMENT.build_checks(seed) if c.id in wanted]
    )


def planted_on_host() -> set[Path]:
    return {path for place in HOST_PLACES for name in PLANTED_NAMES for path in place.glob(name)}


def our_containers(client: Any, owner: str = OWNER) -> list[Any]:
    """Sandbox containers this test process started that still exist (other runs use other owners)."""
    return client.containers.list(all=True, filters={"label": f"{CONTAINER_LABEL}={owner}"})


def assert_nothing_leaks(report: Report, absent: Sequence[str] = ()) -> None:
    document = json.dumps(report.to_dict())
    for text in (REFERENCE_CANARY, SECRET, *absent):
        assert text not in document
    for check in report.checks:
        assert not UNPRINTABLE.search(check.message), (check.id, check.message)
        check.message.encode("utf-8")  # no lone surrogate: a console or a database would refuse it


@pytest.fixture(autouse=True)
def service_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret in the service's environment, as a deployment has (database password, signing key)."""
    monkeypatch.setenv("GRADER_SECRET_KEY", SECRET)


@pytest.fixture(scope="module")
def executor(docker_client: Any, sandbox_image: str) -> Iterator[DockerExecutor]:
    yield DockerExecutor(docker_client, sandbox_image, SETTINGS.container_limits(), owner=OWNER)


def grade_attack(name: str, folder: Path, executor: DockerExecutor) -> Report:
    attack = attacks.ATTACKS[name]
    limits = dataclasses.replace(SETTINGS.grading_limits(), time_scale=attack.time_scale)
    if attack.memory_bytes:
        limits = dataclasses.replace(limits, memory_bytes=attack.memory_bytes)
    return grade_submission(
        load_submission(folder), reduced(attack.checks), seed=SEED, executor=executor, limits=limits
    )


@pytest.mark.parametrize("name", list(attacks.ATTACKS))
def test_attack_fails_alone_and_harms_nothing(
    name: str, tmp_path: Path, docker_client: Any, executor: DockerExecutor
) -> None:
    attack = attacks.ATTACKS[name]
    markers = tmp_path / "markers"
    markers.mkdir()
    folder = attacks.materialize(name, tmp_path, markers)
    planted_before = planted_on_host()

    started = time.monotonic()
    if attack.container_memory_bytes:
        limits = dataclasses.replace(SETTINGS.container_limits(), memory_bytes=attack.container_memory_bytes)
        executor = DockerExecutor(docker_client, executor.image, limits, owner=OWNER)
    report = grade_attack(name, folder, executor)
    seconds = time.monotonic() - started

    checks = {check.id: check for check in report.checks}
    assert set(checks) == set(attack.checks)
    for check_id in attack.attacked:
        check = checks[check_id]
        assert (check.status, check.score) == (attack.status, 0), (check_id, check.message)
        for fragment in attack.message:
            assert fragment in check.message, (check_id, fragment, check.message)
    for check_id in (*attack.passes, *attack.controls):
        check = checks[check_id]
        assert (check.status, check.score) == ("passed", check.max_score), (check_id, check.message)
    assert_nothing_leaks(report, attack.absent)
    assert seconds < WALL_SECONDS
    # The host and the service are unharmed: no container left, nothing created or run here.
    assert our_containers(docker_client) == []
    assert list(markers.iterdir()) == []
    assert planted_on_host() <= planted_before
    os.kill(os.getpid(), 0)  # (we are still here to say so)


@pytest.mark.parametrize(
    ("name", "weakened"),
    [
        ("network", {"network_mode": "bridge"}),
        ("environment_dump", {"environment": {**sandbox_environment(), "GRADER_SECRET_KEY": SECRET}}),
    ],
)
def test_the_attacks_notice_a_weaker_sandbox(
    name: str, weakened: dict[str, Any], tmp_path: Path, docker_client: Any, sandbox_image: str
) -> None:
    """The same attacks against a container with a network, or with the secret in its environment,
    notice it: so their passing above means that the sandbox held, not that they missed."""
    weak = DockerExecutor(docker_client, sandbox_image, SETTINGS.container_limits(), owner=OWNER)
    weak.options = {**weak.options, **weakened}
    report = grade_attack(name, attacks.materialize(name, tmp_path, tmp_path), weak)
    relu = next(check for check in report.checks if check.id == attacks.RELU)
    if name == "network":
        assert (relu.status, relu.score) == ("failed", 0), relu.message
    else:
        assert SECRET in relu.message
    assert our_containers(docker_client) == []


def test_the_attack_table_covers_what_it_must() -> None:
    assert len(attacks.ATTACKS) >= 25
    statuses = {attack.status for attack in attacks.ATTACKS.values() if attack.attacked}
    assert statuses == {"failed", "error", "timeout"}
    assert any(attack.passes for attack in attacks.ATTACKS.values())


@pytest.fixture
def cli_settings(monkeypatch: pytest.MonkeyPatch, sandbox_image: str) -> Iterator[None]:
    """Settings read afresh from this environment (they are cached per process)."""
    monkeypatch.setenv("GRADER_SANDBOX_IMAGE", sandbox_image)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_cli_grades_a_hostile_submission_into_one_json_report(
    tmp_path: Path, docker_client: Any, cli_settings: None
) -> None:
    # Forged result frames on stdout and result files everywhere, through the whole catalog: the
    # student's output never reaches the command's stdout, which holds exactly one JSON document.
    markers = tmp_path / "markers"
    markers.mkdir()
    folder = attacks.materialize("fake_result_frames", tmp_path, markers)

    result = CliRunner().invoke(app, ["grade", str(folder), "--seed", str(SEED), "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["sandbox"]["executor"] == "docker"
    verdicts = {check["id"]: (check["status"], check["score"]) for check in report["checks"]}
    relu_checks = {check_id for check_id in verdicts if check_id.startswith("layers.relu_forward.")}
    assert relu_checks == {attacks.RELU, attacks.RELU_RANDOM}
    for check_id in relu_checks:
        assert verdicts[check_id] == ("failed", 0)
    for check in report["checks"]:
        if check["target"] != "layers.relu_forward" and check["target"] != "fc_net.FullyConnectedNet":
            assert (check["status"], check["score"]) == ("passed", check["max_score"]), check["id"]
    assert report["score"] < report["max_score"]
    assert REFERENCE_CANARY not in result.stdout and SECRET not in result.stdout
    assert our_containers(docker_client, default_owner()) == []
    assert list(markers.iterdir()) == []
