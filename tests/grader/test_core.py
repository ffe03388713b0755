"""The Grader, the one way into the core: built from Settings, it grades files, reports progress, owns
its executor and pool, and never builds an image."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from grader import EXAMPLE_SUBMISSION
from grader.assignments import UnknownAssignment, get_assignment
from grader.core import Grader
from grader.engine.executor import SandboxUnavailable
from grader.engine.grading import grade_submission
from grader.intake.uploads import load_submission
from grader.sandbox_client import images
from grader.sandbox_client.docker_executor import CONTAINER_LABEL, default_owner
from grader.sandbox_client.executor import LocalProcessExecutor
from grader.settings import Settings

FILES = {path.name: path.read_bytes() for path in sorted(EXAMPLE_SUBMISSION.glob("*.py"))}


def our_containers(client: Any) -> list[Any]:
    return client.containers.list(all=True, filters={"label": f"{CONTAINER_LABEL}={default_owner()}"})


def test_it_grades_as_the_engine_does_and_reports_progress() -> None:
    seen: list[tuple[int, int]] = []
    with Grader(Settings(sandbox="process")) as grader:
        report = grader.grade(FILES, "cs231n-a2-fc", seed=3, progress=lambda *step: seen.append(step))
    assert report.score == report.max_score > 0
    assert report.sandbox["executor"] == "process"
    expected = grade_submission(
        load_submission(EXAMPLE_SUBMISSION),
        get_assignment("cs231n-a2-fc"),
        seed=3,
        executor=LocalProcessExecutor(),
        limits=Settings().grading_limits(),
    )
    assert report == expected
    assert seen and seen[-1][0] == seen[-1][1] > 0  # (done, total), and done reaches the total


def test_it_tells_the_checks_that_have_run_as_their_probes_finish() -> None:
    """The sandbox runs the probes in plan order (imports, then each check's, in catalog order): a check
    has run once the probes finished reach its last one."""
    seen: list[tuple[tuple[str, ...], int, int]] = []
    with Grader(Settings(sandbox="process")) as grader:
        grader.grade(FILES, "cs231n-a2-fc", seed=3, checks_progress=lambda *step: seen.append(step))
    checks = get_assignment("cs231n-a2-fc").build_checks(3)
    total = seen[-1][2]
    imports = total - sum(len(check.probes) + len(check.baselines) for check in checks)
    ends = [imports + sum(len(check.probes) for check in checks[: n + 1]) for n in range(len(checks))]
    for ran, finished, _ in seen:
        assert ran == tuple(check.id for check, end in zip(checks, ends, strict=True) if end <= finished)
    assert any(0 < len(ran) < len(checks) for ran, _, _ in seen)  # they come as the grading goes
    assert seen[-1][:2] == (tuple(check.id for check in checks), total)


def test_the_sandbox_argument_overrides_the_settings() -> None:
    with Grader(Settings(sandbox="docker"), sandbox="process") as grader:
        assert grader.executor.name == "process"


def test_the_origins_name_the_students_package() -> None:
    """The folder the files came in names the package when their own imports do not (relative ones)."""
    files = {**FILES, "fc_net.py": FILES["fc_net.py"].replace(b"..layer_utils", b"..layer_utilz")}
    origins = {name: f"assignment2/cs682/{name}" for name in files}
    origins["fc_net.py"] = "assignment2/cs682/classifiers/fc_net.py"
    with Grader(Settings(sandbox="process")) as grader:
        report = grader.grade(files, "cs231n-a2-fc", seed=3, origins=origins)
    model = [check for check in report.checks if check.target.startswith("fc_net.")]
    assert model and all("No module named 'cs682.layer_utilz'" in check.message for check in model)


def test_cascade_is_the_catalogs_option(monkeypatch: pytest.MonkeyPatch) -> None:
    cascading: list[bool] = []

    def grade_submission(submission: Any, assignment: Any, **options: Any) -> None:
        cascading.append(assignment.cascading)

    monkeypatch.setattr("grader.core.grade_submission", grade_submission)
    with Grader(Settings(sandbox="process")) as grader:
        grader.grade(FILES, "cs231n-a2-fc", seed=3)
        grader.grade(FILES, "cs231n-a2-fc", seed=3, cascade=True)
    assert cascading == [False, True]


def test_an_unknown_assignment_is_refused_before_anything_runs() -> None:
    class Refusing(LocalProcessExecutor):
        def run(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("nothing may run")

    with Grader(Settings(sandbox="process")) as grader:
        grader.executor = Refusing()
        with pytest.raises(UnknownAssignment, match="cs231n-a9"):
            grader.grade(FILES, "cs231n-a9", seed=3)


@pytest.mark.usefixtures("sandbox_image")
def test_a_pool_is_owned_and_stopped(docker_client: Any) -> None:
    with Grader(Settings(sandbox="docker", sandbox_pool_size=1)) as grader:
        report = grader.grade(FILES, "cs231n-a2-fc", seed=3)
        assert report.score == report.max_score
        assert report.sandbox["executor"] == "docker"
    assert our_containers(docker_client) == []


def test_a_missing_image_is_unavailable_and_never_built(
    docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {image.id for image in docker_client.images.list(all=True)}
    monkeypatch.setattr(images, "base_image_tag", lambda: "grader-base:none-such")
    with pytest.raises(SandboxUnavailable, match="does not exist: build it with `make sandbox-image`"):
        Grader(Settings(sandbox="docker"))
    with pytest.raises(SandboxUnavailable, match="grader-sandbox:none-such"):
        Grader(Settings(sandbox="docker", sandbox_image="grader-sandbox:none-such"))
    assert {image.id for image in docker_client.images.list(all=True)} == before


def test_unreachable_docker_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(SandboxUnavailable, match="Start the Docker daemon"):
        Grader(Settings(sandbox="docker"))
    assert os.environ["DOCKER_HOST"].endswith("no-docker.sock")
