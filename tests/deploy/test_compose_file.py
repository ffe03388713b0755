"""docker-compose.yml as docker-compose 1.29 and the docker compose plugin read it (`config`), and
.env.example's secret.

Fast: no image is built and nothing is started."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from grader.settings import EXAMPLE_SECRET, Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKER_SOCKET = "/var/run/docker.sock"
GRADER_SERVICES = ("migrate", "web", "worker")


# The tool these machines have, and the current plugin (scripts/ensure-compose-plugin installs it).
TOOLS = {"docker-compose 1.29": ["docker-compose"], "docker compose plugin": ["docker", "compose"]}


@pytest.fixture(scope="module", params=list(TOOLS))
def tool(request: pytest.FixtureRequest) -> list[str]:
    command = TOOLS[request.param]
    found = shutil.which(command[0]) and subprocess.run(
        [*command, "version"], capture_output=True, timeout=60, check=False
    )
    if not found or found.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} does not run: `bash scripts/ensure-compose-plugin` installs the plugin"
        )
    return command


def _env_from_example(secret: str, password: str) -> str:
    text = (ROOT / ".env.example").read_text()
    text = re.sub(r"^GRADER_SECRET_KEY=.*$", f"GRADER_SECRET_KEY={secret}", text, flags=re.MULTILINE)
    return re.sub(r"^POSTGRES_PASSWORD=.*$", f"POSTGRES_PASSWORD={password}", text, flags=re.MULTILINE)


def _config(tool: list[str], tmp_path: Path, env: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` (or `docker compose config`) of a copy of the file beside a temporary
    .env (the repository's own .env, if any, is neither read nor touched)."""
    (tmp_path / "docker-compose.yml").write_text((ROOT / "docker-compose.yml").read_text())
    for context in ("deploy", "sandbox"):  # the build contexts it names must exist
        if not (tmp_path / context).exists():
            (tmp_path / context).symlink_to(ROOT / context)
    (tmp_path / ".env").write_text(env)
    argv = [*tool, "-f", str(tmp_path / "docker-compose.yml"), "config"]
    return subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)


def _parsed(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The configuration printed, without what only one tool prints (the plugin's `required: true` on
    every dependency, its default)."""
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    for service in config["services"].values():
        for condition in service.get("depends_on", {}).values():
            if condition.get("required") is True:
                del condition["required"]
    return config


@pytest.fixture(scope="module")
def stack(tool: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("compose")
    return _parsed(_config(tool, folder, _env_from_example(secrets.token_urlsafe(48), "a-database-password")))


def _mounts(service: dict[str, Any]) -> list[str]:
    """Each volume's source and target, "source:target", whichever syntax the tool printed."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            mounts.append(":".join(volume.split(":")[:2]))
        else:
            mounts.append(f"{volume.get('source')}:{volume['target']}")
    return mounts


def test_the_services_of_the_stack(stack: dict[str, Any]) -> None:
    assert set(stack["services"]) == {"sandbox", "db", "migrate", "web", "worker"}
    commands = {name: stack["services"][name]["command"] for name in GRADER_SERVICES}
    assert commands["migrate"] == ["grader", "db", "upgrade"]
    assert commands["worker"] == ["grader", "worker"]
    assert commands["web"][:2] == ["grader", "serve"]
    assert commands["web"][commands["web"].index("--workers") + 1] == "0"  # grades nothing: no socket
    assert commands["web"][commands["web"].index("--host") + 1] == "0.0.0.0"


def test_only_the_workers_reach_the_docker_engine(stack: dict[str, Any]) -> None:
    with_socket = {
        name
        for name, service in stack["services"].items()
        if any(mount.startswith(DOCKER_SOCKET) for mount in _mounts(service))
    }
    assert with_socket == {"worker"}
    assert f"{DOCKER_SOCKET}:{DOCKER_SOCKET}" in _mounts(stack["services"]["worker"])
    assert not any("privileged" in service for service in stack["services"].values())


def test_named_volumes_for_the_database_and_the_files(stack: dict[str, Any]) -> None:
    assert set(stack["volumes"]) == {"db", "files"}
    assert "db:/var/lib/postgresql/data" in _mounts(stack["services"]["db"])
    for name in GRADER_SERVICES:
        assert "files:/data" in _mounts(stack["services"][name])
        assert stack["services"][name]["environment"]["GRADER_DATA_DIR"] == "/data"


def test_the_start_is_ordered_by_health_and_the_migration(stack: dict[str, Any]) -> None:
    services = stack["services"]
    assert services["db"]["healthcheck"]["test"][0] == "CMD-SHELL"
    assert "pg_isready" in services["db"]["healthcheck"]["test"][1]
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    ready = {
        "db": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    assert services["web"]["depends_on"] == ready
    # A worker starts once the sandbox image is built and has started once.
    assert services["worker"]["depends_on"] == {
        **ready,
        "sandbox": {"condition": "service_completed_successfully"},
    }
    assert services["migrate"]["restart"] == "no"  # once, not in a loop


def test_the_grader_services_run_in_production_on_the_db_service(stack: dict[str, Any]) -> None:
    for name in GRADER_SERVICES:
        environment = stack["services"][name]["environment"]
        assert environment["GRADER_ENV"] == "production"
        assert environment["GRADER_DATABASE_URL"] == (
            "postgresql+psycopg://grader:a-database-password@db:5432/grader"
        )
    assert stack["services"]["db"]["environment"]["POSTGRES_PASSWORD"] == "a-database-password"
    assert stack["services"]["web"]["ports"][0]["target"] == 8000


def test_the_sandbox_image_is_built_once_for_the_workers_that_run_it(stack: dict[str, Any]) -> None:
    sandbox, worker = stack["services"]["sandbox"], stack["services"]["worker"]
    assert Path(sandbox["build"]["context"]).name == "sandbox"  # its own context and .dockerignore
    assert sandbox["image"] == "grader-sandbox:compose"
    assert worker["environment"]["GRADER_SANDBOX_IMAGE"] == sandbox["image"]
    assert worker["build"]["args"]["SANDBOX_IMAGE"] == sandbox["image"]  # baked into the service image
    # Its one container checks that the image starts and exits: no network, no secrets, no socket.
    assert sandbox["network_mode"] == "none"
    assert sandbox["restart"] == "no"
    assert "env_file" not in sandbox and "environment" not in sandbox
    assert _mounts(sandbox) == []


def test_a_sandbox_tag_in_the_env_reaches_the_image_and_the_workers(tool: list[str], tmp_path: Path) -> None:
    env = _env_from_example(secrets.token_urlsafe(48), "pw") + "GRADER_SANDBOX_IMAGE=grader-sandbox:v2\n"
    services = _parsed(_config(tool, tmp_path, env))["services"]
    assert services["sandbox"]["image"] == "grader-sandbox:v2"
    assert services["worker"]["environment"]["GRADER_SANDBOX_IMAGE"] == "grader-sandbox:v2"


def test_no_database_password_no_stack(tool: list[str], tmp_path: Path) -> None:
    result = _config(tool, tmp_path, _env_from_example(secrets.token_urlsafe(48), ""))
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def test_the_example_secret_is_the_one_production_refuses() -> None:
    example = re.search(r"^GRADER_SECRET_KEY=(.*)$", (ROOT / ".env.example").read_text(), re.MULTILINE)
    assert example is not None and example.group(1) == EXAMPLE_SECRET
    assert len(EXAMPLE_SECRET) >= 32  # refused for what it is, not for its length
    with pytest.raises(ValidationError, match="GRADER_SECRET_KEY"):
        Settings(env="production", secret_key=EXAMPLE_SECRET)
    assert Settings(env="development", secret_key=EXAMPLE_SECRET).env == "development"
    Settings(env="production", secret_key=secrets.token_urlsafe(48))


def test_the_example_lists_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?(GRADER_[A-Z_]+)=", text, re.MULTILINE))
    expected = {f"GRADER_{name.upper()}" for name in Settings.model_fields}
    assert expected <= listed, sorted(expected - listed)


def test_the_service_image_bakes_in_the_sandbox_tag_and_checks_its_health() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", dockerfile, re.MULTILINE)
    assert "ENV GRADER_SANDBOX_IMAGE=${SANDBOX_IMAGE}" in dockerfile
    assert re.search(r"^USER grader$", dockerfile, re.MULTILINE)
    assert "/healthz" in dockerfile.split("HEALTHCHECK", 1)[1]
    # The root .dockerignore lets the sandbox's folder in for the service image; the sandbox image's own
    # context (sandbox/) keeps its own list.
    assert (ROOT / "sandbox" / ".dockerignore").is_file()
