"""The real sandbox image: only the sandbox folder in it, numpy, run as nobody, read-only, no reference."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from grader.sandbox_client.images import (
    HASH_LABEL,
    SANDBOX_DIR,
    build_sandbox_image,
    sandbox_context_hash,
    sandbox_files,
)

REPO = Path(__file__).resolve().parents[2]
CANARY = "REFERENCE-CANARY-7f3e"


def run(client: docker.DockerClient, image: str, *command: str) -> str:
    """Run `command` in a throwaway container without network; its stdout."""
    output: bytes = client.containers.run(image, list(command), remove=True, network_mode="none")
    return output.decode()


def test_image_exists_and_is_labelled_with_its_context(
    docker_client: docker.DockerClient, sandbox_image: str
):
    image = docker_client.images.get(sandbox_image)
    assert sandbox_image in image.tags
    assert image.labels[HASH_LABEL] == sandbox_context_hash()


def test_second_build_finds_the_image_without_rebuilding(
    docker_client: docker.DockerClient, sandbox_image: str
):
    image_id = docker_client.images.get(sandbox_image).id
    started = time.monotonic()
    again = build_sandbox_image(docker_client, log=pytest.fail)  # any progress line means it built
    assert time.monotonic() - started < 5
    assert again == sandbox_image
    assert docker_client.images.get(again).id == image_id


def test_numpy_imports_without_network(docker_client: docker.DockerClient, sandbox_image: str):
    version = run(docker_client, sandbox_image, "python3", "-c", "import numpy; print(numpy.__version__)")
    assert int(version.split(".")[0]) >= 1 and version.count(".") == 2


def test_runs_as_nobody(docker_client: docker.DockerClient, sandbox_image: str):
    assert run(docker_client, sandbox_image, "id", "-u").strip() == "65534"
    assert run(docker_client, sandbox_image, "id", "-g").strip() == "65534"


def test_default_command_is_the_runners_help(docker_client: docker.DockerClient, sandbox_image: str):
    # Imports the runner (numpy, recipes) as nobody from the read-only folder, without network.
    output: bytes = docker_client.containers.run(sandbox_image, remove=True, network_mode="none")
    assert output.decode().startswith("usage: runner")


def test_opt_sandbox_holds_the_runner_and_the_scaffolding_only(
    docker_client: docker.DockerClient, sandbox_image: str
):
    listing = run(docker_client, sandbox_image, "find", "/opt/grader/sandbox", "-mindepth", "1")
    assert sorted(listing.split()) == expected_image_paths()
    assert "/opt/grader/sandbox/scaffold/fast_layers.py" in listing  # the course's whole package is there


def test_the_runners_folder_on_sys_path_holds_the_sandbox_package_only(
    docker_client: docker.DockerClient, sandbox_image: str
):
    """The entry puts /opt/grader first on sys.path: nothing there may shadow another module."""
    assert run(docker_client, sandbox_image, "ls", "-A", "/opt/grader").split() == ["sandbox"]


def test_importing_the_entry_does_not_start_a_runner(docker_client: docker.DockerClient, sandbox_image: str):
    """Student code that imports sandbox.runner.__main__ gets a module, not a second runner."""
    lines = [
        "import sys",
        "sys.path.insert(0, '/opt/grader')",
        "import sandbox.runner.__main__",
        "print('imported')",
    ]
    script = "\n".join(lines)
    assert run(docker_client, sandbox_image, "python3", "-I", "-c", script).strip() == "imported"


# Digits of the functions whose rounding depends on the CPU's code paths (numpy's AVX2 and AVX-512 loops,
# glibc's FMA variants of exp and log), as the runner's children compute them.
NUMERICS = """
import hashlib, sys
sys.path.insert(0, '/opt/grader')
from sandbox.runner.__main__ import baseline_numpy
if sys.argv[1] == 'runner':
    baseline_numpy()
import numpy as np
x = np.random.default_rng(0).standard_normal(200_000) * 5
values = (np.exp(x), np.log(np.abs(x)), np.tanh(x), np.abs(x) ** 1.7, np.sqrt(np.abs(x)), x @ x)
print(hashlib.sha256(b''.join(np.asarray(v).tobytes() for v in values)).hexdigest())
"""
# A machine that lacks every extension the baseline x86-64 lacks (glibc's own names for them).
OLDEST_CPU = "glibc.cpu.hwcaps=-AVX512F,-AVX512DQ,-AVX2,-FMA,-AVX,-F16C,-SSE4_2,-SSE4_1,-SSSE3,-POPCNT"


def digits(client: docker.DockerClient, image: str, mode: str, environment: dict[str, str]) -> str:
    output: bytes = client.containers.run(
        image,
        ["python3", "-I", "-c", NUMERICS, mode],
        environment=environment,
        remove=True,
        network_mode="none",
    )
    return output.decode().strip()


def test_the_runner_computes_the_same_digits_on_every_cpu(
    docker_client: docker.DockerClient, sandbox_image: str
):
    """A worker on another CPU gives the same report: the runner's numpy and libm take the baseline
    x86-64 code paths, which an oldest CPU (every extension masked) takes too."""
    here = digits(docker_client, sandbox_image, "runner", {})
    oldest = digits(
        docker_client,
        sandbox_image,
        "runner",
        {"GLIBC_TUNABLES": OLDEST_CPU, "NPY_DISABLE_CPU_FEATURES": ""},  # the runner sets its own list
    )
    assert here == oldest
    if {"avx2", "fma"} <= set(Path("/proc/cpuinfo").read_text().split()):
        # The control: left to pick this CPU's own code paths, the digits differ.
        unpinned = digits(docker_client, sandbox_image, "plain", {"GLIBC_TUNABLES": ""})
        assert unpinned != here


def test_the_runner_turns_off_every_cpu_specific_loop_of_numpy(
    docker_client: docker.DockerClient, sandbox_image: str
):
    script = (
        "import sys, warnings; warnings.simplefilter('error'); sys.path.insert(0, '/opt/grader')\n"
        "from sandbox.runner.__main__ import baseline_numpy; baseline_numpy()\n"
        "import numpy.core._multiarray_umath as m\n"
        "print(len(m.__cpu_dispatch__), [f for f in m.__cpu_dispatch__ if m.__cpu_features__[f]])"
    )
    dispatched, active = run(docker_client, sandbox_image, "python3", "-I", "-c", script).split(" ", 1)
    assert int(dispatched) > 0 and active.strip() == "[]"


def expected_image_paths() -> list[str]:
    """/opt/grader/sandbox as the repository says it should be: its Python files (the runner package, the
    recipes and the scaffold tree) and their folders."""
    files = [path for path in SANDBOX_DIR.rglob("*.py") if "__pycache__" not in path.parts]
    folders = {folder for path in files for folder in path.relative_to(SANDBOX_DIR).parents}
    paths = {path.relative_to(SANDBOX_DIR) for path in files} | folders - {Path(".")}
    return sorted(f"/opt/grader/sandbox/{path.as_posix()}" for path in paths)


def test_the_image_files_are_the_sandbox_folders_python_files():
    """The .dockerignore is the one list: every Python file under sandbox/ enters the image (a new folder
    the list forgot fails here), and nothing else but the build's own two files goes to the engine."""
    python_files = {path.relative_to(SANDBOX_DIR) for path in SANDBOX_DIR.rglob("*.py")}
    python_files = {path for path in python_files if "__pycache__" not in path.parts}
    assert set(sandbox_files()) == python_files | {Path("Dockerfile"), Path(".dockerignore")}
    assert {Path("runner/__main__.py"), Path("runner/protocol.py"), Path("recipes/layers.py")} <= python_files


def test_no_file_of_the_reference_enters_the_image(docker_client: docker.DockerClient, sandbox_image: str):
    assert CANARY in (REPO / "reference" / "layers.py").read_text(), "the canary this test looks for moved"
    # A planted control file proves grep really searched; only it may match.
    script = (
        f"printf '%s' {CANARY} > /tmp/control; "
        f"grep -rl {CANARY} /opt /tmp /home /root /usr/lib/python3* /usr/local/lib 2>/dev/null; true"
    )
    assert run(docker_client, sandbox_image, "sh", "-c", script).split() == ["/tmp/control"]


WRITE_ATTEMPTS = """
import json, os, pathlib
results = {}
for path in [pathlib.Path("/opt/grader/sandbox"), *pathlib.Path("/opt/grader/sandbox").rglob("*")]:
    try:
        if path.is_dir():
            (path / "planted.py").write_text("x = 1")
        else:
            path.open("a").close()
        results[str(path)] = "written"
    except PermissionError:
        results[str(path)] = "denied"
    try:
        path.chmod(0o777)
        results[str(path)] = "chmod"
    except PermissionError:
        pass
print(json.dumps(results))
"""


def test_sandbox_files_are_read_only_for_the_container_user(
    docker_client: docker.DockerClient, sandbox_image: str
):
    results = json.loads(run(docker_client, sandbox_image, "python3", "-c", WRITE_ATTEMPTS))
    assert len(results) == len(expected_image_paths()) + 1  # and /opt/grader/sandbox itself
    assert set(results.values()) == {"denied"}, results


def test_context_hash_changes_with_what_enters_the_image_only(tmp_path: Path):
    copy = tmp_path / "sandbox"
    shutil.copytree(SANDBOX_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    original = sandbox_context_hash(copy)
    assert original == sandbox_context_hash()  # relative paths and bytes, not where the folder lives

    (copy / "notes.txt").write_text("not in the image")
    (copy / "runner" / "__pycache__").mkdir()
    (copy / "runner" / "__pycache__" / "child.cpython-311.pyc").write_bytes(b"not in the image either")
    assert sandbox_context_hash(copy) == original

    with (copy / "scaffold" / "solver.py").open("a") as solver:
        solver.write("\n# changed\n")
    changed = sandbox_context_hash(copy)
    assert changed != original

    with (copy / "Dockerfile").open("a") as dockerfile:
        dockerfile.write("\nLABEL changed=1\n")
    assert sandbox_context_hash(copy) not in {original, changed}


def images_command(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "grader.sandbox_client.images"]
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)


def test_command_prints_the_tag_last(sandbox_image: str):
    result = images_command(dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == sandbox_image


def test_command_explains_an_unreachable_docker(tmp_path: Path):
    result = images_command({**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert result.returncode == 3
    assert "start the Docker daemon, or check DOCKER_HOST" in result.stderr


def test_superseded_sandbox_images_are_removed(
    docker_client: docker.DockerClient, sandbox_image: str
) -> None:
    from grader.sandbox_client.images import base_image_tag, remove_superseded_images

    old = "grader-sandbox:0000000000000000-superseded"
    docker_client.images.get(base_image_tag()).tag(old)  # another image under an older sandbox tag
    removed: list[str] = []
    remove_superseded_images(docker_client, keep=sandbox_image, log=removed.append)
    tags = {tag for image in docker_client.images.list(name="grader-sandbox") for tag in image.tags}
    assert old not in tags and sandbox_image in tags
    assert any(old in line for line in removed)
