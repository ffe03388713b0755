"""`grader gradescope-bundle`: a Gradescope autograder zip that grades with this grader.

The zip holds setup.sh and run_autograder at its root, the grading core (engine, catalogs, intake, the
unprivileged sandbox and the Gradescope entry: nothing of the service, Docker or pydantic), the
reference, the sandbox's runner (the files the sandbox image holds), the configuration (this machine's
GRADER_* limits) and numpy wheels for the Pythons of Gradescope's images. setup.sh installs it all from
those files (install.py); run_autograder grades each submission (autograder.py). The zip is the same,
byte for byte, for the same sources, wheels and settings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated

import typer

import grader
import reference
import sandbox
from grader.assignments import UnknownAssignment, get_assignment
from grader.gradescope import install
from grader.settings import Settings, get_settings

# Gradescope's Ubuntu 24.04 image has Python 3.12 (22.04 has 3.10, older than the grader needs).
DEFAULT_PYTHONS = ("3.12",)
# Gradescope's machines are x86-64 with a recent glibc; older numpy releases tag their wheels manylinux2014.
WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
# The grading core the autograder imports, relative to the grader package (and the course's example,
# which setup.sh grades to check the image).
CORE_PACKAGES = ("engine", "assignments", "intake")
CORE_MODULES = (
    "__init__.py",
    "sandbox_client/__init__.py",
    "sandbox_client/executor.py",
    "sandbox_client/unprivileged.py",
    "gradescope/__init__.py",
    "gradescope/results.py",
    "gradescope/autograder.py",
    "gradescope/install.py",
)
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
EXIT_UNUSABLE_INPUT = 2

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image: it installs the CS231n grader
# from this zip's own files, with no network (grader/gradescope/install.py says how), with the first
# Python 3.11+ found, those the bundle has numpy wheels for first.
set -euo pipefail
cd "$(dirname "$0")"
for candidate in {candidates}; do
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        exec "$(command -v "$candidate")" -I grader/gradescope/install.py
    fi
done
echo "setup.sh: the grader needs Python 3.11 or newer: choose Gradescope's Ubuntu 24.04 image" >&2
exit 1
"""

RUN_AUTOGRADER = f"""#!/usr/bin/env bash
# Gradescope runs this as root for every submission: it grades /autograder/submission and writes
# /autograder/results/results.json; the student's code runs as the sandbox user, which can read nothing
# of the grader's and write nothing of the results (grader/gradescope/autograder.py).
exec {install.INSTALL_ROOT}/bin/python -I {install.INSTALL_ROOT}/trusted/autograde.py "$@"
"""


class BundleError(Exception):
    """The bundle cannot be built; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Bundle:
    path: Path
    files: int
    size: int
    sha256: str
    wheels: tuple[str, ...]


def build_bundle(
    out: Path,
    *,
    assignment: str = "cs231n-a2-fc",
    pythons: Sequence[str] = DEFAULT_PYTHONS,
    wheel_dir: Path | None = None,
    with_numpy: bool = True,
    cascade: bool = False,
    settings: Settings | None = None,
) -> Bundle:
    """Write the autograder zip to `out`: numpy wheels for `pythons` (downloaded with pip, or the
    numpy-*.whl of `wheel_dir`; none without `with_numpy`, for an image that has numpy)."""
    get_assignment(assignment)  # UnknownAssignment before anything is downloaded
    settings = settings or get_settings()
    entries = dict(_sources())
    wheels: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="grader-wheels-") as downloads:
        if with_numpy:
            wheels = list_wheels(wheel_dir) if wheel_dir else download_numpy(pythons, Path(downloads))
        for wheel in wheels:
            entries[f"wheels/{wheel.name}"] = (wheel.read_bytes(), 0o644)
    entries["bundle.json"] = (json.dumps(_config(assignment, cascade, settings), indent=1).encode(), 0o644)
    entries["setup.sh"] = (SETUP_SH.format(candidates=" ".join(_candidates(pythons))).encode(), 0o755)
    entries["run_autograder"] = (RUN_AUTOGRADER.encode(), 0o755)
    digest = write_zip(out, entries)
    return Bundle(out, len(entries), out.stat().st_size, digest, tuple(wheel.name for wheel in wheels))


def _sources() -> Iterator[tuple[str, tuple[bytes, int]]]:
    from grader.sandbox_client.images import sandbox_files  # docker-py's matcher: here, not at CLI start

    core = Path(grader.__file__).resolve().parent
    for module in CORE_MODULES:
        yield f"grader/{module}", ((core / module).read_bytes(), 0o644)
    for package in CORE_PACKAGES:
        yield from _python_files(core / package, f"grader/{package}")
    examples = core / "examples"
    for path in sorted(examples.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            yield f"grader/examples/{path.relative_to(examples).as_posix()}", (path.read_bytes(), 0o644)
    yield from _python_files(Path(reference.__file__).resolve().parent, "reference")
    sandbox_root = Path(sandbox.__file__).resolve().parent
    for relative in sandbox_files(sandbox_root):  # exactly what enters the sandbox image
        if relative.suffix == ".py":
            yield f"sandbox/{relative.as_posix()}", ((sandbox_root / relative).read_bytes(), 0o644)


def _python_files(root: Path, prefix: str) -> Iterator[tuple[str, tuple[bytes, int]]]:
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" not in path.parts:
            yield f"{prefix}/{path.relative_to(root).as_posix()}", (path.read_bytes(), 0o644)


def _config(assignment: str, cascade: bool, settings: Settings) -> dict[str, object]:
    container = settings.container_limits()
    return {
        "assignment": assignment,
        "cascade": cascade,
        "grader_version": grader_version(),
        "grading_limits": dataclasses.asdict(settings.grading_limits()),
        "intake_limits": dataclasses.asdict(settings.intake_limits()),
        "user_limits": {
            "processes": container.pids,
            "open_files": container.open_files,
            "file_bytes": container.file_bytes,
            "output_bytes": container.output_bytes,
        },
    }


def grader_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("grader")
    except PackageNotFoundError:
        return "unknown"


def _candidates(pythons: Sequence[str]) -> list[str]:
    """setup.sh's interpreters: those with a bundled numpy first, then the newest."""
    names = [f"python{version}" for version in pythons]
    names += [f"python3.{minor}" for minor in range(14, 10, -1) if f"python3.{minor}" not in names]
    return [*names, "python3"]


def list_wheels(folder: Path) -> list[Path]:
    wheels = sorted(folder.glob("numpy-*.whl"))
    if not wheels:
        raise BundleError(f"no numpy-*.whl in {folder}")
    return wheels


def download_numpy(pythons: Sequence[str], folder: Path) -> list[Path]:
    """numpy wheels (this machine's numpy version, which the grader is tested with) for each Python."""
    import numpy

    for python in pythons:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        command += [
            "--implementation",
            "cp",
            "--python-version",
            python,
            "--abi",
            f"cp{python.replace('.', '')}",
        ]
        for platform_tag in WHEEL_PLATFORMS:
            command += ["--platform", platform_tag]
        command += ["--dest", str(folder), f"numpy=={numpy.__version__}"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BundleError(
                f"pip could not download numpy {numpy.__version__} for Python {python}:\n"
                f"{(result.stdout + result.stderr)[-2000:]}\n"
                "download the wheels elsewhere and pass --wheels DIR, or --no-wheels for an image with numpy"
            )
    return sorted(folder.glob("numpy-*.whl"))


def write_zip(out: Path, entries: dict[str, tuple[bytes, int]]) -> str:
    """Write the entries (name -> bytes, mode) in name order with fixed times; the zip's sha256."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            data, mode = entries[name]
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.create_system = 3  # Unix: unzip restores the modes (run_autograder must be executable)
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_STORED if name.endswith(".whl") else zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    partial.write_bytes(buffer.getvalue())
    os.replace(partial, out)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def gradescope_bundle(
    out: Annotated[Path, typer.Option(help="the zip to write")] = Path("autograder.zip"),
    assignment: Annotated[str, typer.Option(help="the check catalog")] = "cs231n-a2-fc",
    python: Annotated[
        list[str] | None,
        typer.Option(
            "--python",
            help="Python of Gradescope's image to bundle numpy for, repeatable (default 3.12: Ubuntu 24.04)",
        ),
    ] = None,
    wheels: Annotated[
        Path | None, typer.Option(help="a folder with the numpy-*.whl to bundle, instead of downloading them")
    ] = None,
    no_wheels: Annotated[
        bool, typer.Option("--no-wheels", help="bundle no numpy: the image must have numpy >= 1.24")
    ] = False,
    cascade: Annotated[
        bool, typer.Option("--cascade", help="a bug also costs points in every check that relies on it")
    ] = False,
) -> None:
    """Write a Gradescope autograder zip (setup.sh, run_autograder) that grades with this grader."""
    try:
        bundle = build_bundle(
            out,
            assignment=assignment,
            pythons=tuple(python or DEFAULT_PYTHONS),
            wheel_dir=wheels,
            with_numpy=not no_wheels,
            cascade=cascade,
        )
    except UnknownAssignment as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_UNUSABLE_INPUT) from exc
    except BundleError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    numpy_line = ", ".join(bundle.wheels) or "none (the image's own)"
    typer.echo(
        f"wrote {bundle.path} ({bundle.size / 1e6:.1f} MB, {bundle.files} files, "
        f"sha256 {bundle.sha256[:16]})\n"
        f"  assignment {assignment}; numpy: {numpy_line}\n"
        "  upload it as the autograder of a Gradescope programming assignment (base image: Ubuntu 24.04)"
    )
