"""The root Dockerfile builds, offline, on the local Debian base: the image runs `grader`, as a non-root
user, with its HEALTHCHECK on /healthz and the sandbox tag it was given."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from grader.sandbox_client.images import base_image_tag, image_exists

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = ("pyproject.toml", "README.md", "Dockerfile", ".dockerignore", "grader", "reference", "sandbox")

pytestmark = [
    pytest.mark.docker,
    pytest.mark.slow(reason="builds the service image: about a minute, two the first time"),
]


def prepare_build_context(context: Path) -> None:
    """The service image's build context in `context`: the repository's files the Dockerfile takes, and
    the air-gapped path of the README, the wheels made by the host's pip, none fetched in the build (its
    apt reaches the Debian mirror, as the base image's debootstrap did)."""
    for name in CONTEXT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, context / name)
    wheels = context / "deploy" / "wheels"
    pip = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        str(context),
        "setuptools>=68,<81",
        "-w",
        str(wheels),
    ]
    subprocess.run(pip, check=True, timeout=240, cwd=context)
    for wheel in wheels.glob("grader-*.whl"):
        wheel.unlink()


@pytest.fixture(scope="module")
def service_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    client = docker.from_env()
    base = base_image_tag()
    if not image_exists(client, base):
        pytest.skip(f"no {base}: `make sandbox-image` builds it")
    context = tmp_path_factory.mktemp("service-context")
    prepare_build_context(context)
    shutil.rmtree(context / "build", ignore_errors=True)
    tag = f"grader-service-test:{secrets.token_hex(6)}"
    build = ["docker", "build", "--build-arg", f"BASE_IMAGE={base}", "--build-arg", "PIP_NO_INDEX=1"]
    build += ["--build-arg", "SANDBOX_IMAGE=grader-sandbox:baked-in", "-t", tag, str(context)]
    output = ""
    try:
        result = subprocess.run(
            build, capture_output=True, text=True, timeout=280, env={**os.environ, "DOCKER_BUILDKIT": "0"}
        )
        output = result.stdout
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        yield tag
    finally:
        # The image, then the build stage's (untagged; its untagged parents go with it).
        for image in [tag, *_build_stage_images(output)]:
            subprocess.run(["docker", "image", "rm", "-f", image], capture_output=True, check=False)
        client.close()


def _build_stage_images(output: str) -> list[str]:
    """The last image of the build stage, from the classic builder's log (" ---> <id>" before the final
    stage's FROM)."""
    stage, _, _ = output.rpartition("FROM ${BASE_IMAGE}\n")
    ids = re.findall(r"^ ---> ([0-9a-f]{12})$", stage, re.MULTILINE)
    return ids[-1:]


def _inspect(tag: str) -> dict[str, Any]:
    output = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, text=True, check=True)
    config: dict[str, Any] = json.loads(output.stdout)[0]["Config"]
    return config


def test_the_image_runs_grader_as_a_user_with_a_health_check(service_image: str) -> None:
    run = ["docker", "run", "--rm", "--network", "none", service_image]
    result = subprocess.run([*run, "grader", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout and "worker" in result.stdout
    whoami = subprocess.run([*run, "id", "-u"], capture_output=True, text=True, timeout=60, check=True)
    assert whoami.stdout.strip() == "10001"
    config = _inspect(service_image)
    assert config["User"] == "grader"
    assert "/healthz" in " ".join(config["Healthcheck"]["Test"])
    assert "GRADER_SANDBOX_IMAGE=grader-sandbox:baked-in" in config["Env"]
    assert config["Cmd"] == ["grader", "serve", "--host", "0.0.0.0"]
    assert "8000/tcp" in config["ExposedPorts"]
    # Small: no compiler, no pip, no tests.
    probe = "import shutil, importlib.util as u; "
    probe += "print(shutil.which('gcc'), u.find_spec('pip'), u.find_spec('pytest'))"
    found = subprocess.run(
        [*run, "python3", "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert found.stdout.split() == ["None", "None", "None"]
