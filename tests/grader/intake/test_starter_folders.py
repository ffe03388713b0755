"""Uploads shaped like real ones: the course's whole starter folder, under any package name, with the graded
files importing the course's other modules in every style students use, as a folder and as each tool's zip.

Intake: every upload gives exactly the four graded files of the package, byte for byte, and lists the rest.
Grading: correct code gets full marks whatever the package name, import style or zip tool; a typo in a
course module's name costs the model checks and the message names the student's own package.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from grader.assignments import get_assignment
from grader.engine.executor import Executor
from grader.engine.grading import grade_submission
from grader.engine.report import Report
from grader.intake.uploads import load_submission
from grader.sandbox_client.docker_executor import DockerExecutor
from grader.sandbox_client.executor import LocalProcessExecutor
from grader.settings import Settings
from tests.fixtures.starter import starter

ASSIGNMENT = get_assignment("cs231n-a2-fc")
SEED = 20210423
PACKAGES = starter.PACKAGES
STYLES = starter.IMPORT_STYLES
FLAVORS = starter.ZIP_FLAVORS

# One grading per package in the real sandbox, covering every import style and every zip flavor.
DOCKER_CASES = [
    ("cs231n", "relative", "course_script"),
    ("daseCV", "absolute", "windows_backslash"),
    ("cs682", "mixed", "macos"),
    ("dl_course_2024", "fc_net_self_import", "colab"),
    ("daseCV", "mixed", "linux"),
    ("cs682", "relative", "windows"),
]
assert {case[0] for case in DOCKER_CASES} == set(PACKAGES)
assert {case[1] for case in DOCKER_CASES} == set(STYLES)
assert {case[2] for case in DOCKER_CASES} == set(FLAVORS)
# Every zip flavor once more, with other packages and styles. The intake tests show that each zip gives
# the folder's graded files byte for byte, at the same place in the package, so the grading of every
# (package, style) folder below stands for the whole matrix.
LOCAL_ZIP_CASES = [
    ("daseCV", "fc_net_self_import", "course_script"),
    ("cs682", "absolute", "linux"),
    ("dl_course_2024", "relative", "windows"),
    ("cs231n", "fc_net_self_import", "windows_backslash"),
    ("dl_course_2024", "mixed", "macos"),
    ("cs231n", "absolute", "colab"),
]

Upload = Callable[..., Path]


@pytest.fixture(scope="module")
def upload(tmp_path_factory: pytest.TempPathFactory) -> Upload:
    """upload(package, style, flavor=None, edits=()): the assignment folder, or its zip, written once."""
    root = tmp_path_factory.mktemp("starter")
    made: dict[tuple[Any, ...], Path] = {}

    def make(package: str, style: str, flavor: str | None = None, edits: Sequence[starter.Edit] = ()) -> Path:
        folder_key = (package, style, None, tuple(edits))
        if folder_key not in made:
            made[folder_key] = starter.write_assignment_folder(
                root / f"{len(made)}-{package}-{style}", package=package, import_style=style, edits=edits
            )
        if flavor is None:
            return made[folder_key]
        key = (package, style, flavor, tuple(edits))
        if key not in made:
            made[key] = starter.zip_folder(
                made[folder_key], root / f"{len(made)}-{package}-{style}-{flavor}.zip", flavor=flavor
            )
        return made[key]

    return make


@pytest.fixture(scope="module")
def docker_executor(docker_client: Any, sandbox_image: str) -> Executor:
    return DockerExecutor(docker_client, sandbox_image, Settings().container_limits())


def grade(path: Path, executor: Executor) -> Report:
    return grade_submission(load_submission(path), ASSIGNMENT, seed=SEED, executor=executor)


def not_passed(report: Report) -> dict[str, str]:
    """Every check short of full marks, with its status and the start of its message (to read on failure)."""
    return {
        c.id: f"{c.status}: {c.message[:400]}"
        for c in report.checks
        if c.status != "passed" or c.score != c.max_score
    }


def assert_full_marks(report: Report) -> None:
    assert not_passed(report) == {}
    assert report.score == report.max_score == sum(c.max_score for c in report.checks)


def typo_in_layer_utils(package: str, style: str) -> starter.Edit:
    """`fast_layer` for `fast_layers`, in the form of the style's own import of it."""
    module = ".fast_layers" if style in ("relative", "fc_net_self_import") else f"{package}.fast_layers"
    return ("layer_utils.py", f"from {module} import *", f"from {module[:-1]} import *")


def folder_files(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}


# ------------------------------------------------------------------------------------------ the corpus


@pytest.mark.slow  # 16 runs of the course's own code, a Solver epoch each
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_and_style_runs_in_the_course_layout(package: str, style: str, upload: Upload) -> None:
    """The corpus is code that works in the course: the notebook's imports, a loss, a Solver epoch."""
    result = starter.run_in_course(upload(package, style), package)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "course run ok" in result.stdout


@pytest.mark.parametrize("package", ["daseCV", "dl_course_2024"])
def test_the_typo_fails_in_the_course_with_the_students_package_name(package: str, upload: Upload) -> None:
    style = "absolute" if package == "dl_course_2024" else "relative"
    folder = upload(package, style, edits=[typo_in_layer_utils(package, style)])
    result = starter.run_in_course(folder, package)
    assert result.returncode != 0
    assert f"ModuleNotFoundError: No module named '{package}.fast_layer'" in result.stderr


@pytest.mark.parametrize("flavor", FLAVORS)
def test_zips_look_like_the_tools_that_made_them(flavor: str, upload: Upload) -> None:
    folder = upload("daseCV", "relative")
    with zipfile.ZipFile(upload("daseCV", "relative", flavor)) as archive:
        entries = archive.infolist()
    names = [entry.orig_filename for entry in entries]
    systems = {entry.create_system for entry in entries}
    directories = [name for name in names if name.endswith("/")]
    prefix = starter.entry_prefix(flavor)
    files = {prefix + path for path in folder_files(folder)}
    if flavor == "course_script":
        collected = {path for path in files if path.endswith((".py", ".pyx")) and path != "makepdf.py"}
        assert set(names) == collected | set(starter.NOTEBOOKS)
        assert "daseCV/.ipynb_checkpoints/layers-checkpoint.py" in names  # find . -name "*.py" finds it
        return
    if flavor == "windows_backslash":
        assert set(names) == {path.replace("/", "\\") for path in files} and systems == {0}
        assert all(entry.external_attr == 0 for entry in entries)
        return
    assert directories and names[0] == prefix
    if flavor == "windows":
        assert set(names) - set(directories) == files and systems == {0}
        assert {entry.external_attr for entry in entries} == {0x10, 0x20}
    elif flavor in ("linux", "colab"):
        assert set(names) - set(directories) == files and systems == {3}
        assert all(entry.extra.startswith(b"UT") for entry in entries)
        assert names[0].startswith(starter.COLAB_PREFIX) == (flavor == "colab")
    else:
        assert systems == {3} and all(entry.flag_bits & 0x08 for entry in entries)  # data descriptors
        ds_stores = {name for name in names if name.endswith("/.DS_Store")}
        assert set(names) - set(directories) - ds_stores == files | {
            f"__MACOSX/{folder}/._{name}"
            for folder, _, name in (path.rpartition("/") for path in files | ds_stores)
        }


# ---------------------------------------------------------------------------------------------- intake


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("package", PACKAGES)
def test_a_folder_gives_the_four_graded_files_of_its_package(
    package: str, style: str, upload: Upload
) -> None:
    folder = upload(package, style)
    submission = load_submission(folder)
    assert dict(submission.files) == starter.graded_sources(package, style)
    assert dict(submission.origins) == starter.graded_origins(package)
    graded = set(starter.graded_origins(package).values())
    listed = {
        path for path in folder_files(folder) if path not in graded and not starter.is_tool_debris(path)
    }
    assert set(submission.ignored) == listed
    assert set(starter.NOTEBOOKS) | {f"{package}/fast_layers.py", "collectSubmission.sh"} <= listed


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("package", PACKAGES)
def test_every_zip_flavor_gives_the_same_graded_files(
    package: str, style: str, flavor: str, upload: Upload
) -> None:
    submission = load_submission(upload(package, style, flavor))
    assert dict(submission.files) == starter.graded_sources(package, style)
    prefix = starter.entry_prefix(flavor)
    assert dict(submission.origins) == starter.graded_origins(package, prefix)
    folder_listed = {prefix + path for path in folder_files(upload(package, style))}
    for path in submission.ignored:
        assert not starter.is_tool_debris(path), path
        assert path in folder_listed or path.endswith("/.DS_Store"), path
    expected = {prefix + notebook for notebook in starter.NOTEBOOKS} | {f"{prefix}{package}/fast_layers.py"}
    assert expected <= set(submission.ignored)


@pytest.mark.parametrize("flavor", [None, "course_script", "macos"])
def test_the_stale_checkpoint_is_in_the_upload_but_the_real_file_is_graded(
    flavor: str | None, upload: Upload
) -> None:
    path = upload("cs682", "relative", flavor)
    checkpoint = (
        f"{starter.entry_prefix(flavor or 'course_script')}cs682/.ipynb_checkpoints/layers-checkpoint.py"
    )
    if flavor is None:
        stale = (path / checkpoint).read_bytes()
    else:
        with zipfile.ZipFile(path) as archive:
            stale = archive.read(checkpoint)
    assert b"out = x.dot(w) + b" in stale  # the old copy forgets the reshape
    submission = load_submission(path)
    assert submission.files["layers.py"] == starter.graded_sources("cs682", "relative")["layers.py"] != stale
    assert ".ipynb_checkpoints" not in " ".join([*submission.origins.values(), *submission.ignored])


# --------------------------------------------------------------------------------------------- grading


@pytest.mark.parametrize(("package", "style", "flavor"), DOCKER_CASES)
def test_full_marks_in_the_docker_sandbox(
    package: str, style: str, flavor: str, upload: Upload, docker_executor: Executor
) -> None:
    assert_full_marks(grade(upload(package, style, flavor), docker_executor))


@pytest.mark.slow  # 16 gradings; the typo and checkpoint tests below grade some of these in the quick loop
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("package", PACKAGES)
def test_full_marks_for_every_package_and_import_style(package: str, style: str, upload: Upload) -> None:
    assert_full_marks(grade(upload(package, style), LocalProcessExecutor()))


@pytest.mark.slow  # a grading per flavor; the graded files of every flavor are compared above, quickly
@pytest.mark.parametrize(("package", "style", "flavor"), LOCAL_ZIP_CASES)
def test_full_marks_for_every_zip_flavor(package: str, style: str, flavor: str, upload: Upload) -> None:
    assert_full_marks(grade(upload(package, style, flavor), LocalProcessExecutor()))


@pytest.mark.parametrize(
    ("package", "style", "flavor", "sandbox"),
    [
        pytest.param("daseCV", "relative", "linux", "docker", marks=pytest.mark.docker),
        ("cs682", "relative", None, "process"),
        # A grading each: in the full run only.
        pytest.param("dl_course_2024", "absolute", "windows_backslash", "process", marks=pytest.mark.slow),
        pytest.param("cs231n", "mixed", None, "process", marks=pytest.mark.slow),
    ],
)
def test_a_typo_in_a_course_module_costs_the_model_checks_and_names_the_students_package(
    package: str, style: str, flavor: str | None, sandbox: str, upload: Upload, request: pytest.FixtureRequest
) -> None:
    executor = request.getfixturevalue("docker_executor") if sandbox == "docker" else LocalProcessExecutor()
    report = grade(upload(package, style, flavor, edits=[typo_in_layer_utils(package, style)]), executor)
    model = [c for c in report.checks if c.target.startswith("fc_net.")]
    others = [c for c in report.checks if not c.target.startswith("fc_net.")]
    assert model and others
    assert not_passed(report).keys() == {c.id for c in model}, "only the model checks import layer_utils"
    for check in model:
        assert check.status == "error" and check.score == 0, check.id
        assert f"No module named '{package}.fast_layer'" in check.message, check.message
        if package != "cs231n":
            assert "cs231n" not in check.message, check.message
    assert report.score == report.max_score - sum(c.max_score for c in model)


def test_a_wrong_checkpoint_zipped_beside_the_right_file_still_gets_full_marks(upload: Upload) -> None:
    """collectSubmission.sh zips the checkpoint too: `find . -name "*.py"` walks into .ipynb_checkpoints."""
    path = upload("daseCV", "relative", "course_script")
    with zipfile.ZipFile(path) as archive:
        assert b"out = x.dot(w) + b" in archive.read("daseCV/.ipynb_checkpoints/layers-checkpoint.py")
    assert_full_marks(grade(path, LocalProcessExecutor()))
