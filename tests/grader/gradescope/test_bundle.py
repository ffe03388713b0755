"""`grader gradescope-bundle`: the zip Gradescope gets, and its run_autograder run as Gradescope runs it, in
a container made from the local Debian base image with Gradescope's paths (the zip unpacked in
/autograder/source, setup.sh run as root at build time, /autograder/run_autograder run as root for each
submission in /autograder/submission, /autograder/results/results.json read afterwards). No network:
the image is built and run with `--network none`, from the zip's files only.

The image is built once per content (the zip is the same byte for byte for the same sources), so a
second session only runs the submissions. A hostile submission tries to forge results.json (at once,
and from a process it leaves behind, after the grader wrote it), to read the autograder's files and
the reference, and counts the processes earlier probes left: any success changes its relu_forward's
output, so full marks mean none succeeded.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sys
import tarfile
import tempfile
import textwrap
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import numpy
import pytest
from typer.testing import CliRunner

from grader import EXAMPLE_SUBMISSION
from grader.cli import app
from grader.gradescope.bundle import BundleError, build_bundle
from grader.gradescope.install import INSTALL_ROOT, SANDBOX_USER
from grader.sandbox_client.images import build_base_image
from grader.settings import Settings
from tests.fixtures.submissions.attacks import relu
from tests.fixtures.submissions.buggy import SUBMISSION_FILES, apply_edits, materialize
from tests.grader.gradescope.results_spec import assert_scores_add_up, assert_valid

IMAGE_REPOSITORY = "grader-gradescope-test"
FULL_MARKS = 86.0
FORGED = {"score": 1000.0, "tests": [{"name": "forged", "score": 1000.0, "max_score": 1.0}]}
HIDDEN_OUTPUT = "SECRET-HIDDEN-OUTPUT"  # in an earlier submission's results, which the metadata holds
FORGE = ("/autograder/results/results.json", "/autograder/results/forged.json", "/autograder/forged.json")
SECRETS = (
    "/autograder/source/bundle.json",
    "/autograder/source/setup.sh",
    "/autograder/run_autograder",
    "/autograder/submission_metadata.json",
    f"{INSTALL_ROOT}/trusted/config.json",
    f"{INSTALL_ROOT}/trusted/reference/layers.py",
    f"{INSTALL_ROOT}/trusted/grader/assignments/cs231n_a2_fc/cases.py",
)
FOLDERS = ("/autograder/source", "/autograder/submission", f"{INSTALL_ROOT}/trusted")

# relu_forward's body: every attack, once per process; any success adds to its output.
HOSTILE_RELU = f"""
import json, os, time
state = globals().setdefault("_attack_state", {{}})
if "breaches" not in state:
    breaches = []
    forged = json.dumps({FORGED!r})
    for path in {FORGE!r}:
        try:
            with open(path, "w") as handle:
                handle.write(forged)
            breaches.append(path)
        except OSError:
            pass
    for path in {SECRETS!r}:
        try:
            with open(path, "rb") as handle:
                handle.read(1)
            breaches.append(path)
        except OSError:
            pass
    for folder in {FOLDERS!r}:
        try:
            os.listdir(folder)
            breaches.append(folder)
        except OSError:
            pass
    # Processes of this user in other sessions are daemons that earlier probes left behind.
    session = os.getsid(0)
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{{name}}/status") as status:
                uid = [line.split()[1] for line in status if line.startswith("Uid:")]
            if uid == [str(os.getuid())] and os.getsid(int(name)) != session:
                breaches.append(name)
        except OSError:
            pass
    state["breaches"] = len(breaches)
    if os.fork() == 0:
        os.setsid()
        os.closerange(3, 1024)
        while True:  # the known exploit: overwrite the grader's results.json once it is there
            try:
                with open("/autograder/results/results.json", "w") as handle:
                    handle.write(forged)
            except OSError:
                pass
            time.sleep(0.02)
out = np.maximum(0, x) + state["breaches"]
"""

# Run as root in the container once run_autograder has returned: what the sandbox user left running
# and in the shared folders, and who owns what.
AFTER_GRADING = f"""
import json, os, pwd, stat, sys
uid = pwd.getpwnam({SANDBOX_USER!r}).pw_uid
processes = []
for name in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{{name}}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
        with open(f"/proc/{{name}}/cmdline", "rb") as cmdline:
            command = cmdline.read().replace(b"\\0", b" ").decode(errors="replace")
    except OSError:
        continue
    if fields["Uid"].split()[0] == str(uid) and not fields["State"].split()[0] == "Z":
        processes.append(command)
left = [
    os.path.join(folder, entry)
    for folder in ("/tmp", "/var/tmp", "/dev/shm")
    for entry in os.listdir(folder)
    if os.lstat(os.path.join(folder, entry)).st_uid == uid
]
def owner_and_mode(path):
    if not os.path.lexists(path):
        return None
    info = os.lstat(path)
    return [info.st_uid, oct(stat.S_IMODE(info.st_mode))]
paths = ["/autograder", "/autograder/results", "/autograder/results/results.json", *sys.argv[1:]]
lib = "{INSTALL_ROOT}/lib"
print(json.dumps({{
    "uid": uid,
    "processes": processes,
    "left": left,
    "paths": {{path: owner_and_mode(path) for path in paths}},
    "numpy": sorted(name for name in os.listdir(lib) if name.startswith("numpy-")),
}}))
"""

# Gradescope's image build: the zip unpacked (unzip keeps the modes), setup.sh run as root from the
# source folder; here also what a careless image could hold: world-writable folders, a stale forged
# results.json, and the submission's metadata with an earlier submission's hidden results.
DOCKERFILE = """
FROM {base}
COPY autograder.zip after_grading.py submission_metadata.json /tmp/
RUN python3 -I -c "import os, zipfile; archive = zipfile.ZipFile('/tmp/autograder.zip'); \\
[(archive.extract(i, '/autograder/source'), \\
  os.chmod(os.path.join('/autograder/source', i.filename), (i.external_attr >> 16) & 0o777)) \\
 for i in archive.infolist()]" \\
 && rm /tmp/autograder.zip \\
 && cp /autograder/source/run_autograder /autograder/run_autograder \\
 && cd /autograder/source && bash ./setup.sh \\
 && mkdir -m 0777 /autograder/results /autograder/submission \\
 && echo '{forged}' > /autograder/results/results.json && chmod 0666 /autograder/results/results.json \\
 && mv /tmp/submission_metadata.json /autograder/ && chmod 0644 /autograder/submission_metadata.json \\
 && mv /tmp/after_grading.py /usr/local/bin/after_grading.py
WORKDIR /autograder
"""
GRADE_AND_LOOK = (
    "/autograder/run_autograder > /autograder/results/stdout 2>&1; echo $? > /autograder/results/exit_code; "
    f"python3 -I /usr/local/bin/after_grading.py {' '.join(SECRETS + FOLDERS)} "
    "> /autograder/results/after.json"
)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Graded:
    exit_code: int
    results: dict[str, Any] | None
    stdout: str
    after: dict[str, Any]


@pytest.fixture(scope="session")
def base_image(docker_client: docker.DockerClient) -> str:
    return build_base_image(docker_client, log=_log)


@pytest.fixture(scope="session")
def bundle(
    docker_client: docker.DockerClient, base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The zip, with a numpy wheel for the base image's Python (pip, through this machine's index)."""
    version = docker_client.containers.run(
        base_image,
        ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        remove=True,
        network_mode="none",
    )
    out = tmp_path_factory.mktemp("gradescope") / "autograder.zip"
    settings = Settings(time_scale=2.0)  # two shared cores: no correct probe may run out of time
    try:
        build_bundle(out, pythons=(version.decode().strip(),), settings=settings)
    except BundleError as exc:
        warnings.warn(f"no numpy wheel (offline?): the bundle uses the image's numpy\n{exc}", stacklevel=1)
        build_bundle(out, with_numpy=False, settings=settings)
    return out


@pytest.fixture(scope="session")
def autograder_image(docker_client: docker.DockerClient, base_image: str, bundle: Path) -> str:
    """The image Gradescope would build from the zip; found by the hash of everything it is made of."""
    metadata = json.dumps({"previous_submissions": [{"results": {"tests": [{"output": HIDDEN_OUTPUT}]}}]})
    context = {
        "Dockerfile": DOCKERFILE.format(base=base_image, forged=json.dumps(FORGED)).encode(),
        "autograder.zip": bundle.read_bytes(),
        "after_grading.py": AFTER_GRADING.encode(),
        "submission_metadata.json": metadata.encode(),
    }
    digest = hashlib.sha256(base_image.encode())
    for name in sorted(context):
        digest.update(name.encode() + hashlib.sha256(context[name]).digest())
    tag = f"{IMAGE_REPOSITORY}:{digest.hexdigest()[:16]}"
    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_client.images.get(tag)
        return tag
    with tempfile.TemporaryDirectory(prefix="gradescope-image-") as folder:
        for name, data in context.items():
            (Path(folder) / name).write_bytes(data)
        try:
            docker_client.images.build(
                path=folder, tag=tag, network_mode="none", rm=True, forcerm=True, pull=False
            )
        except docker.errors.BuildError as error:
            steps = "".join(str(entry.get("stream", entry.get("error", ""))) for entry in error.build_log)
            pytest.fail(f"setup.sh failed in the image build:\n{steps[-4000:]}")
    for image in docker_client.images.list(name=IMAGE_REPOSITORY):  # earlier sources' images
        for stale in (t for t in image.tags if t != tag and tag not in image.tags):
            with contextlib.suppress(docker.errors.APIError):
                docker_client.images.remove(stale)
    return tag


def grade(client: docker.DockerClient, image: str, files: Mapping[str, bytes]) -> Graded:
    """Put `files` in /autograder/submission, run run_autograder as Gradescope does, read the results."""
    container = client.containers.create(
        image, ["bash", "-c", GRADE_AND_LOOK], network_mode="none", working_dir="/autograder"
    )
    try:
        container.put_archive("/autograder/submission", _tar(files))
        container.start()
        container.wait(timeout=300)
        found = _untar(b"".join(container.get_archive("/autograder/results")[0]))
    finally:
        container.remove(force=True)
    results = found.get("results/results.json")
    return Graded(
        exit_code=int(found["results/exit_code"]),
        results=json.loads(results) if results is not None else None,
        stdout=found["results/stdout"].decode(),
        after=json.loads(found["results/after.json"]),
    )


def _tar(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _untar(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return {
            member.name: archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.isfile()
        }


def example_files() -> dict[str, bytes]:
    return {name: (EXAMPLE_SUBMISSION / name).read_bytes() for name in SUBMISSION_FILES}


def assert_graded_by_the_grader(graded: Graded) -> dict[str, Any]:
    """A valid results.json, the grader's, with nothing of the sandbox user left, and the folders closed."""
    assert graded.exit_code == 0, graded.stdout
    assert graded.results is not None, graded.stdout
    assert_valid(graded.results)
    assert_scores_add_up(graded.results)
    assert graded.results["stdout_visibility"] == "hidden"
    assert graded.after["processes"] == [] and graded.after["left"] == []
    paths = graded.after["paths"]
    assert paths["/autograder/results"] == [0, "0o755"]
    assert paths["/autograder/results/results.json"] == [0, "0o644"]
    assert paths["/autograder/source"] == [0, "0o700"]
    assert paths[f"{INSTALL_ROOT}/trusted"] == [0, "0o700"]
    assert paths["/autograder/submission_metadata.json"] == [0, "0o600"]
    return graded.results


def test_the_zip_holds_what_gradescope_needs_and_nothing_of_the_service(tmp_path: Path) -> None:
    out = tmp_path / "autograder.zip"
    answer = CliRunner().invoke(app, ["gradescope-bundle", "--out", str(out), "--no-wheels"])
    assert answer.exit_code == 0, answer.output
    assert "wrote" in answer.output
    with zipfile.ZipFile(out) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        config = json.loads(archive.read("bundle.json"))
        setup = archive.read("setup.sh").decode()
    for script in ("setup.sh", "run_autograder"):
        assert (infos[script].external_attr >> 16) & 0o111, f"{script} is not executable"
    assert {"grader/gradescope/autograder.py", "grader/sandbox_client/unprivileged.py"} <= set(infos)
    assert {
        "reference/layers.py",
        "sandbox/runner/__main__.py",
        "grader/examples/correct_course/layers.py",
    } <= set(infos)
    assert not [name for name in infos if name.startswith(("grader/service/", "tests/"))]
    assert not {"grader/settings.py", "grader/core.py", "grader/cli.py"} & set(infos)
    assert not [name for name in infos if name.startswith("wheels/") or "__pycache__" in name]
    assert config["assignment"] == "cs231n-a2-fc" and config["user_limits"]["processes"] > 0
    assert "set -euo pipefail" in setup
    again = tmp_path / "again.zip"
    assert CliRunner().invoke(app, ["gradescope-bundle", "--out", str(again), "--no-wheels"]).exit_code == 0
    assert again.read_bytes() == out.read_bytes()  # the same sources make the same zip
    unknown = CliRunner().invoke(app, ["gradescope-bundle", "--out", str(out), "--assignment", "nope"])
    assert unknown.exit_code == 2


def test_a_correct_submission_gets_full_marks(
    docker_client: docker.DockerClient, autograder_image: str, bundle: Path
) -> None:
    graded = grade(docker_client, autograder_image, example_files())
    results = assert_graded_by_the_grader(graded)
    assert results["score"] == FULL_MARKS
    assert {test["status"] for test in results["tests"]} == {"passed"}
    visibilities = {test["visibility"] for test in results["tests"]}
    assert visibilities == {"visible", "after_due_date"}
    assert "seed " in graded.stdout  # for the staff, in the stdout that students do not see
    with zipfile.ZipFile(bundle) as archive:
        if any(name.startswith("wheels/") for name in archive.namelist()):  # numpy as the grader was tested
            assert graded.after["numpy"] == [f"numpy-{numpy.__version__}.dist-info"]


def test_a_buggy_submission_loses_points_with_its_mistake_named(
    docker_client: docker.DockerClient, autograder_image: str, tmp_path: Path
) -> None:
    folder = materialize("bn_eps_outside_sqrt", tmp_path)
    files = {path.name: path.read_bytes() for path in folder.iterdir()}
    results = assert_graded_by_the_grader(grade(docker_client, autograder_image, files))
    assert results["score"] < FULL_MARKS
    failed = [test for test in results["tests"] if test["status"] == "failed"]
    assert failed and all(test["name"].startswith("layers.batchnorm") for test in failed)
    assert any("[bn_eps_outside_sqrt]" in test["output"] for test in failed)


def test_a_hostile_submission_can_neither_forge_the_results_nor_read_the_grader(
    docker_client: docker.DockerClient, autograder_image: str
) -> None:
    texts = {name: (EXAMPLE_SUBMISSION / name).read_text() for name in SUBMISSION_FILES}
    hostile = apply_edits(texts, relu(textwrap.dedent(HOSTILE_RELU)))
    graded = grade(docker_client, autograder_image, {name: text.encode() for name, text in hostile.items()})
    results = assert_graded_by_the_grader(graded)
    assert results["score"] == FULL_MARKS, [t["name"] for t in results["tests"] if t["status"] != "passed"]
    assert "forged" not in json.dumps(results) and HIDDEN_OUTPUT not in json.dumps(results)
    for path in (*SECRETS, *FOLDERS):  # they exist: the attack failed for want of permission
        assert graded.after["paths"][path] is not None, path


def test_an_upload_without_graded_files_gets_zero_and_the_reason(
    docker_client: docker.DockerClient, autograder_image: str
) -> None:
    results = assert_graded_by_the_grader(grade(docker_client, autograder_image, {"notes.txt": b"hello"}))
    assert (results["score"], results["tests"]) == (0.0, [])
    assert "no graded file found" in results["output"]


def test_a_zip_left_as_it_was_uploaded_is_graded(
    docker_client: docker.DockerClient, autograder_image: str
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in example_files().items():
            archive.writestr(f"assignment2/cs231n/{name}", data)
    results = assert_graded_by_the_grader(
        grade(docker_client, autograder_image, {"a2.zip": buffer.getvalue()})
    )
    assert results["score"] == FULL_MARKS
