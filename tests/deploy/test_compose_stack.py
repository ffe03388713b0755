"""The deployment path, end to end: docker-compose 1.29 runs docker-compose.yml on images built from the
local base (no registry, no PyPI); the first admin signs in, makes a course, a student and an assignment;
the student's correct and buggy submissions are graded by the `worker` service in the sandbox image; the
workers scale to two; and `down` leaves no container, network or volume of the project behind."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docker
import httpx2
import pytest

from grader import EXAMPLE_SUBMISSION
from grader.sandbox_client.images import base_image_tag, image_exists
from tests.deploy.test_service_image import _build_stage_images, prepare_build_context
from tests.fixtures.submissions.buggy import materialize

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CATALOG = "cs231n-a2-fc"
FULL_MARKS = 86.0
SUBMISSION_FILES = ("layers.py", "fc_net.py", "optim.py")
BUGGY = "relu_backward_masks_dout"
STARTUP_SECONDS = 180.0
GRADING_SECONDS = 240.0
LABEL = "com.docker.compose.project"
# The tool these machines have, and the current plugin (scripts/ensure-compose-plugin installs it).
TOOLS = {"docker-compose": ["docker-compose"], "docker-compose-plugin": ["docker", "compose"]}

pytestmark = pytest.mark.slow(
    reason="builds the service and database images, runs the whole stack and grades in it: about two minutes"
)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run(
    command: list[str], *, timeout: float, check: bool = True, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if check:
        assert result.returncode == 0, (
            f"{' '.join(command)}: exit {result.returncode}\n{(result.stdout + result.stderr)[-3000:]}"
        )
    return result


def _classic_build(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    return _run(["docker", "build", *args], timeout=timeout, check=False, env=env)


@contextmanager
def _service_image(base: str, context: Path) -> Iterator[str]:
    """The root Dockerfile built as test_service_image.py builds it (the README's air-gapped path: the host
    pip's wheels, PIP_NO_INDEX=1), tagged for this test alone and removed afterwards."""
    prepare_build_context(context)
    shutil.rmtree(context / "build", ignore_errors=True)
    tag = f"grader-service-test:{secrets.token_hex(6)}"
    output = ""
    try:
        result = _classic_build(
            ["--build-arg", f"BASE_IMAGE={base}", "--build-arg", "PIP_NO_INDEX=1", "-t", tag, str(context)],
            400,
        )
        output = result.stdout
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        yield tag
    finally:
        for image in [tag, *_build_stage_images(output)]:
            subprocess.run(["docker", "image", "rm", "-f", image], capture_output=True, check=False)


def _postgres_image(client: docker.DockerClient, base: str) -> str:
    """deploy/postgres built on the local base, tagged by its files and the base's id: kept, like the base,
    so that later runs reuse it (it changes only when deploy/postgres or the base does)."""
    digest = hashlib.sha256(client.images.get(base).id.encode())
    for path in sorted((ROOT / "deploy" / "postgres").iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    tag = f"grader-postgres-test:{digest.hexdigest()[:16]}"
    if not image_exists(client, tag):
        result = _classic_build(
            ["--build-arg", f"BASE_IMAGE={base}", "-t", tag, str(ROOT / "deploy" / "postgres")], 400
        )
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return tag


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env_file(path: Path, settings: dict[str, str]) -> None:
    """.env.example with the settings given replacing (or added to) its lines."""
    lines = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        key = line.lstrip("# ").partition("=")[0]
        if "=" in line and key in settings:
            continue
        lines.append(line)
    lines += [f"{key}={value}" for key, value in settings.items()]
    path.write_text("\n".join(lines) + "\n")


class Stack:
    """docker-compose -p <project> (or docker compose) on a copy of docker-compose.yml beside the test's
    .env."""

    def __init__(self, tool: list[str], directory: Path, project: str) -> None:
        self.tool = tool
        self.directory = directory
        self.project = project

    def command(self, *args: str) -> list[str]:
        compose_file, env = str(self.directory / "docker-compose.yml"), str(self.directory / ".env")
        return [*self.tool, "-p", self.project, "-f", compose_file, "--env-file", env, *args]

    def compose(self, *args: str, timeout: float = 300, check: bool = True, stdin: str | None = None) -> str:
        result = _run(self.command(*args), timeout=timeout, check=False, cwd=self.directory, input=stdin)
        if check:
            output = f"{result.stdout}{result.stderr}\n{self.logs()}"
            assert result.returncode == 0, (
                f"{' '.join(self.command(*args))}: exit {result.returncode}\n{output}"
            )
        return result.stdout

    def compose_bytes(self, *args: str, stdin: bytes | None = None, timeout: float = 300) -> bytes:
        """A command whose input or output is binary: a dump, a tar."""
        result = subprocess.run(
            self.command(*args),
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
            cwd=self.directory,
        )
        error = result.stderr.decode(errors="replace")
        assert result.returncode == 0, (
            f"{' '.join(self.tool)} {' '.join(args)}: exit {result.returncode}\n{error}"
        )
        return result.stdout

    def logs(self) -> str:
        command = self.command("logs", "--no-color", "--tail", "40")
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=60, check=False, cwd=self.directory
            )
        except subprocess.TimeoutExpired:
            return "(docker-compose logs timed out)"
        return (result.stdout + result.stderr)[-6000:]

    def ids(self, kind: str, *filters: str) -> list[str]:
        """The project's containers (all of them), networks or volumes, by its label."""
        command = ["docker", kind, "ls", "-q", "--filter", f"label={LABEL}={self.project}"]
        if kind == "container":
            command.insert(3, "-a")
        for extra in filters:
            command += ["--filter", extra]
        return _run(command, timeout=60).stdout.split()

    def tear_down(self) -> dict[str, list[str]]:
        """down -v, then whatever is left with the project's label; what is still left after that."""
        try:
            self.compose("down", "-v", "--remove-orphans", "--timeout", "20", timeout=180, check=False)
        except subprocess.TimeoutExpired:
            _log(f"{' '.join(self.tool)} down of {self.project} timed out")
        for kind, remove in (
            ("container", ["rm", "-f", "-v"]),
            ("network", ["rm"]),
            ("volume", ["rm", "-f"]),
        ):
            if ids := self.ids(kind):
                _log(f"removing {kind}s left by {self.project}: {ids}")
                subprocess.run(["docker", kind, *remove, *ids], capture_output=True, check=False, timeout=120)
        return {kind: self.ids(kind) for kind in ("container", "network", "volume")}


def _exit_states(stack: Stack, service: str) -> list[list[str]]:
    """Each of the service's containers' status and exit code."""
    ids = stack.ids("container", f"label=com.docker.compose.service={service}")
    template = "{{.State.Status}} {{.State.ExitCode}}"
    return [_run(["docker", "inspect", "-f", template, one], timeout=30).stdout.split() for one in ids]


def _wait_healthy(stack: Stack, url: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"{url}/healthz", timeout=3).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(1)
    pytest.fail(f"{url}/healthz did not answer in {STARTUP_SECONDS:.0f} s:\n{stack.logs()}", pytrace=False)


def _token(url: str, email: str, password: str) -> str:
    answer = httpx2.post(
        f"{url}/api/v1/auth/token", data={"username": email, "password": password}, timeout=30
    )
    assert answer.status_code == 200, f"signing in {email}: {answer.status_code} {answer.text}"
    return str(answer.json()["access_token"])


def _client(url: str, token: str) -> httpx2.Client:
    return httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _submit(student: httpx2.Client, assignment_id: str, folder: Path) -> str:
    files = [("files", (name, (folder / name).read_bytes(), "text/x-python")) for name in SUBMISSION_FILES]
    answer = student.post(f"/api/v1/assignments/{assignment_id}/submissions", files=files)
    assert answer.status_code == 202, f"{answer.status_code} {answer.text}"
    return str(answer.json()["id"])


def _wait_graded(stack: Stack, staff: httpx2.Client, submission_ids: list[str]) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + GRADING_SECONDS
    done: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline and len(done) < len(submission_ids):
        for submission_id in submission_ids:
            if submission_id in done:
                continue
            answer = staff.get(f"/api/v1/submissions/{submission_id}")
            assert answer.status_code == 200, f"{answer.status_code} {answer.text}"
            if answer.json()["status"] in ("graded", "failed"):
                done[submission_id] = answer.json()
        time.sleep(2)
    assert len(done) == len(submission_ids), f"not graded in {GRADING_SECONDS:.0f} s: {done}\n{stack.logs()}"
    return done


def _back_up_and_restore(stack: Stack, admin: httpx2.Client, url: str, graded_id: str) -> None:
    """The README's backup and restore commands, run as written: a course made after the backup is gone
    after the restore, and the submissions' files, deleted after the backup, are back (a regrade reads
    them and gives the same grade)."""
    dump = stack.compose_bytes("exec", "-T", "db", "pg_dump", "-U", "grader", "-Fc", "grader")
    tar_files = ("run", "--rm", "-T", "--no-deps", "--entrypoint", "tar", "web", "-C", "/data")
    files = stack.compose_bytes(*tar_files, "-czf", "-", ".")
    assert dump.startswith(b"PGDMP") and len(files) > 1000
    answer = admin.post("/api/v1/courses", json={"slug": "after-backup", "title": "Made after the backup"})
    assert answer.status_code == 201, answer.text
    stack.compose("run", "--rm", "-T", "--no-deps", "--entrypoint", "sh", "web", "-c", "rm -rf /data/files/*")

    stack.compose("stop", "web", "worker")
    restore = ("exec", "-T", "db", "pg_restore", "-U", "grader", "-d", "grader", "--clean", "--if-exists")
    stack.compose_bytes(*restore, stdin=dump)
    stack.compose_bytes(*tar_files, "-xzf", "-", stdin=files)
    stack.compose("start", "web", "worker")
    _wait_healthy(stack, url)

    slugs = {course["slug"] for course in admin.get("/api/v1/courses").json()}
    assert slugs == {"cs231n"}, slugs
    answer = admin.post(f"/api/v1/submissions/{graded_id}/regrade")
    assert answer.status_code == 202, answer.text
    deadline = time.monotonic() + GRADING_SECONDS
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = admin.get(f"/api/v1/submissions/{graded_id}/runs").json()
        if len(runs) >= 2 and runs[-1]["status"] != "running":
            break
        time.sleep(2)
    assert [(run["status"], run["score"]) for run in runs] == [("graded", FULL_MARKS)] * 2, (
        f"{runs}\n{stack.logs()}"
    )


@pytest.fixture(scope="module")
def images(sandbox_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The local base (which the sandbox image fixture builds), the database image built on it (kept) and
    the service image (removed afterwards): what `up` would build on a new machine, built once for the
    runs of every Compose tool."""
    started = time.monotonic()
    client = docker.from_env()
    base = base_image_tag()
    postgres = _postgres_image(client, base)
    _log(f"database image {postgres} in {time.monotonic() - started:.0f} s")
    with _service_image(base, tmp_path_factory.mktemp("service-context")) as service:
        _log(f"service image {service} in {time.monotonic() - started:.0f} s")
        yield {"base": base, "postgres": postgres, "service": service}
    client.close()


@pytest.mark.parametrize("tool", list(TOOLS))
def test_the_compose_stack_grades_and_scales_and_leaves_nothing(
    tool: str, images: dict[str, str], tmp_path: Path
) -> None:
    started = time.monotonic()
    client = docker.from_env()
    base = images["base"]
    # The compose file beside the .env (its `env_file: .env` is the project directory's). The service
    # and database images exist already; `up` builds the sandbox image, from sandbox/, as it would on a
    # new machine (deploy/ only so that the db's build context exists).
    stack_dir = tmp_path / "stack"
    stack_dir.mkdir()
    shutil.copy2(COMPOSE_FILE, stack_dir / "docker-compose.yml")
    (stack_dir / "deploy").symlink_to(ROOT / "deploy")
    shutil.copytree(ROOT / "sandbox", stack_dir / "sandbox", ignore=shutil.ignore_patterns("__pycache__"))
    sandbox = f"grader-sandbox-test:{secrets.token_hex(6)}"
    port = _free_port()
    admin_email, admin_password = "ada.admin@example.org", secrets.token_urlsafe(16)
    _env_file(
        stack_dir / ".env",
        {
            "GRADER_SECRET_KEY": secrets.token_urlsafe(48),
            "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
            "GRADER_HTTP_PORT": str(port),
            "GRADER_IMAGE": images["service"],
            "GRADER_POSTGRES_IMAGE": images["postgres"],
            "GRADER_BASE_IMAGE": base,
            "GRADER_POSTGRES_BASE_IMAGE": base,
            "GRADER_PIP_NO_INDEX": "1",
            "GRADER_SANDBOX_IMAGE": sandbox,
            "GRADER_SANDBOX_BASE_IMAGE": base,
            "DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid),
            "GRADER_ADMIN_EMAIL": admin_email,
            "GRADER_ADMIN_PASSWORD": admin_password,
            "GRADER_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "GRADER_WORKER_POLL_SECONDS": "0.5",
        },
    )
    stack = Stack(TOOLS[tool], stack_dir, f"gradertest{secrets.token_hex(6)}")
    leftovers: dict[str, list[str]] = {}
    try:
        stack.compose("up", "-d", timeout=STARTUP_SECONDS + 300)
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(stack, url)
        _log(f"{tool}: stack up in {time.monotonic() - started:.0f} s")
        assert image_exists(client, sandbox), f"up did not build {sandbox}"
        for once in ("migrate", "sandbox"):  # ran once, and succeeded
            assert _exit_states(stack, once) == [["exited", "0"]], stack.logs()

        student_email, student_password = "sam.student@example.org", secrets.token_urlsafe(16)
        created = ["run", "--rm", "--no-deps", "-T", "web", "grader", "users", "create", student_email]
        stack.compose(*created, "--name", "Sam Student", "--password-stdin", stdin=student_password + "\n")
        with _client(url, _token(url, admin_email, admin_password)) as admin:
            assignment_id = _course_with_assignment(admin, student_email)
            with _client(url, _token(url, student_email, student_password)) as student:
                correct = _submit(student, assignment_id, EXAMPLE_SUBMISSION)
                buggy = _submit(student, assignment_id, materialize(BUGGY, tmp_path / "buggy"))
            graded = _wait_graded(stack, admin, [correct, buggy])
            _log(f"{tool}: graded in {time.monotonic() - started:.0f} s")
            assert graded[correct]["status"] == "graded", graded
            assert (graded[correct]["score"], graded[correct]["max_score"]) == (FULL_MARKS, FULL_MARKS)
            assert graded[buggy]["status"] == "graded", graded
            assert graded[buggy]["max_score"] == FULL_MARKS
            assert graded[buggy]["score"] < FULL_MARKS
            _back_up_and_restore(stack, admin, url, correct)
            _log(f"{tool}: backed up and restored in {time.monotonic() - started:.0f} s")

        stack.compose(
            "up", "-d", "--no-build", "--no-recreate", "--scale", "worker=2", timeout=STARTUP_SECONDS
        )
        workers = stack.ids("container", "label=com.docker.compose.service=worker", "status=running")
        assert len(workers) == 2, stack.compose("ps", check=False)
        assert _exit_states(stack, "sandbox") == [["exited", "0"]]  # still built once for both
    finally:
        leftovers = stack.tear_down()
        subprocess.run(["docker", "image", "rm", sandbox], capture_output=True, check=False, timeout=120)
        client.close()
    assert leftovers == {"container": [], "network": [], "volume": []}
    _log(f"{tool}: the whole test in {time.monotonic() - started:.0f} s")


def _course_with_assignment(admin: httpx2.Client, student_email: str) -> str:
    """A course with the student in it and an assignment due in a week: the assignment's id."""
    answer = admin.post("/api/v1/courses", json={"slug": "cs231n", "title": "CS231n"})
    assert answer.status_code == 201, answer.text
    course_id = answer.json()["id"]
    member = {"email": student_email, "name": "Sam Student", "role": "student"}
    answer = admin.post(f"/api/v1/courses/{course_id}/members", json=member)
    assert answer.status_code == 201, answer.text
    due = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    assignment = {"slug": "a2", "title": "Assignment 2", "catalog": CATALOG, "due_at": due}
    answer = admin.post(f"/api/v1/courses/{course_id}/assignments", json=assignment)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])
