"""Runs in Gradescope's image build, as root (the bundle's setup.sh): installs the grader from the zip's
own files, with no network. Standard library only: nothing else is installed yet.

    /opt/cs231n-grader/bin/python   the interpreter setup.sh chose (Python 3.11 or newer)
    /opt/cs231n-grader/lib/         root's, read-only to all: the sandbox's runner and numpy (from a
                                    bundled wheel; else the image's own), what the Docker sandbox holds
    /opt/cs231n-grader/trusted/     root's alone (0700): the grading core, the reference, the catalogs,
                                    the configuration

A user of its own (SANDBOX_USER, no home, no shell, no groups) runs the student's code. The install ends
by checking that this user can import numpy from lib/ but cannot read trusted/, and by grading the
course's example solution, which must get full marks: a broken image fails here, not at a deadline.

usage: python3 -I install.py   (from the unpacked bundle, /autograder/source)
"""

from __future__ import annotations

import compileall
import json
import os
import platform
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2]  # the unpacked bundle: grader/gradescope/install.py in it
INSTALL_ROOT = Path("/opt/cs231n-grader")
SANDBOX_USER = "cs231n-sandbox"
NUMPY_RANGE = ((1, 24), (3, 0))  # the grader's own requirement, when the image's numpy is used
WHEEL_NAME = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$"
)
MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_(.+)$")
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def log(message: str) -> None:
    print(f"setup: {message}", flush=True)


def main() -> int:
    if os.geteuid() != 0:
        raise SystemExit("setup: run as root (Gradescope runs setup.sh as root)")
    if sys.version_info < (3, 11):  # noqa: UP036 (setup.sh may find nothing newer)
        raise SystemExit(f"setup: the grader needs Python 3.11 or newer, not {platform.python_version()}")
    close_to_others(SOURCE)
    config = json.loads((SOURCE / "bundle.json").read_text())
    uid, gid = sandbox_user(SANDBOX_USER)
    if INSTALL_ROOT.exists():
        shutil.rmtree(INSTALL_ROOT)
    lib, trusted, bin_dir = INSTALL_ROOT / "lib", INSTALL_ROOT / "trusted", INSTALL_ROOT / "bin"
    for folder in (INSTALL_ROOT, lib, trusted, bin_dir):
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chmod(trusted, 0o700)
    shutil.copytree(SOURCE / "sandbox", lib / "sandbox")
    for package in ("grader", "reference"):
        shutil.copytree(SOURCE / package, trusted / package)
    numpy_from = install_numpy(sorted((SOURCE / "wheels").glob("*.whl")), lib)
    python = bin_dir / "python"
    python.symlink_to(os.path.realpath(sys.executable))
    config.update(
        uid=uid,
        gid=gid,
        python=str(python),
        runner=str(lib / "sandbox" / "runner" / "__main__.py"),
        numpy=numpy_from,
    )
    (trusted / "config.json").write_text(json.dumps(config, indent=1))
    (trusted / "autograde.py").write_text(
        "import sys\n"
        f"sys.path[:0] = [{str(trusted)!r}, {str(lib)!r}]\n"
        "from grader.gradescope.autograder import main\n"
        "sys.exit(main())\n"
    )
    for folder in (lib, trusted):
        compileall.compile_dir(folder, quiet=1, workers=0)
    set_modes(lib, folders=0o755, files=0o644)
    set_modes(trusted, folders=0o700, files=0o600)
    check_separation(str(python), lib, trusted, uid, gid)
    self_test(str(python), trusted)
    log(f"installed in {INSTALL_ROOT}: {config['assignment']}, numpy {numpy_from}, sandbox user uid {uid}")
    return 0


def close_to_others(folder: Path) -> None:
    """The unpacked bundle (the reference, the catalogs) becomes root's alone."""
    os.chown(folder, 0, 0)
    os.chmod(folder, 0o700)
    for parent, folders, files in os.walk(folder):
        for name in folders + files:
            path = os.path.join(parent, name)
            if not os.path.islink(path):
                os.chown(path, 0, 0)
                os.chmod(path, os.lstat(path).st_mode & 0o700)


def sandbox_user(name: str) -> tuple[int, int]:
    """The uid and gid of `name`, a system user with a group of its own, made if missing."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        shell = next((s for s in ("/usr/sbin/nologin", "/sbin/nologin") if os.path.exists(s)), "/bin/false")
        command = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
        subprocess.run([*command, "--shell", shell, name], check=True)
        entry = pwd.getpwnam(name)
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise SystemExit(f"setup: the user {name} must not be root")
    return entry.pw_uid, entry.pw_gid


def install_numpy(wheels: list[Path], lib: Path) -> str:
    """Unpack the bundled numpy wheel that fits this interpreter into `lib` (what pip would install,
    but its scripts and headers); without one, the image's own numpy; where it came from."""
    for wheel in wheels:
        if wheel_fits(wheel.name):
            with zipfile.ZipFile(wheel) as archive:
                for member in archive.infolist():
                    target = member.filename
                    first, _, rest = target.partition("/")
                    if first.endswith(".data"):  # name-version.data/<scheme>/...: only the library schemes
                        scheme, _, target = rest.partition("/")
                        if scheme not in ("purelib", "platlib"):
                            continue
                    destination = (lib / target).resolve()
                    if not destination.is_relative_to(lib.resolve()) or member.is_dir():
                        continue
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    destination.write_bytes(archive.read(member))
            log(f"numpy from the bundled {wheel.name}")
            return wheel.name
    found = subprocess.run(
        [sys.executable, "-I", "-c", "import numpy; print(numpy.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    version = tuple(int(part) for part in re.findall(r"\d+", found.stdout)[:2])
    if found.returncode != 0 or not NUMPY_RANGE[0] <= version < NUMPY_RANGE[1]:
        bundled = ", ".join(wheel.name for wheel in wheels) or "none"
        raise SystemExit(
            f"setup: no bundled numpy wheel fits Python {platform.python_version()} on "
            f"{platform.machine()} (bundled: {bundled}), and the image has no numpy >= 1.24, < 3: build the "
            "bundle with `grader gradescope-bundle --python "
            f"{sys.version_info.major}.{sys.version_info.minor}`"
        )
    log(f"numpy {found.stdout.strip()} of the image ({sys.executable})")
    return f"numpy {found.stdout.strip()} of the image"


def wheel_fits(filename: str) -> bool:
    """Whether a wheel's tags fit this CPython, its machine and its glibc (the cases numpy ships)."""
    match = WHEEL_NAME.match(filename)
    if match is None or sys.implementation.name != "cpython":
        return False
    ours = f"cp{sys.version_info.major}{sys.version_info.minor}"
    if ours not in match["py"].split(".") or not {ours, "abi3", "none"} & set(match["abi"].split(".")):
        return False
    glibc = tuple(int(part) for part in (platform.libc_ver()[1] or "0.0").split(".")[:2])
    for tag in match["plat"].split("."):
        manylinux = MANYLINUX.match(tag)
        legacy = tag.removesuffix("_" + platform.machine())
        if manylinux and manylinux[3] == platform.machine():
            needed = (int(manylinux[1]), int(manylinux[2]))
        elif legacy != tag and legacy in LEGACY_MANYLINUX:
            needed = LEGACY_MANYLINUX[legacy]
        else:
            continue
        if glibc >= needed:
            return True
    return False


def set_modes(root: Path, *, folders: int, files: int) -> None:
    """Root's, with these modes (files that were executable stay so for their owners)."""
    for parent, names, file_names in os.walk(root):
        os.chown(parent, 0, 0)
        os.chmod(parent, folders)
        for name in file_names:
            path = os.path.join(parent, name)
            if os.path.islink(path):
                continue
            os.chown(path, 0, 0)
            executable = os.stat(path).st_mode & 0o100
            os.chmod(path, files | (executable and (folders & 0o111)))
        names[:] = [name for name in names if not os.path.islink(os.path.join(parent, name))]


def check_separation(python: str, lib: Path, trusted: Path, uid: int, gid: int) -> None:
    """As the sandbox user: numpy imports from lib/, and nothing of trusted/ or the bundle can be read."""
    probe = (
        "import sys\n"
        f"sys.path.insert(0, {str(lib)!r})\n"
        "import numpy, sandbox.runner.protocol\n"
        "opened = []\n"
        f"for path in ({str(trusted / 'config.json')!r}, {str(SOURCE / 'bundle.json')!r}):\n"
        "    try:\n"
        "        open(path).close()\n"
        "        opened.append(path)\n"
        "    except OSError:\n"
        "        pass\n"
        "print(numpy.__version__, numpy.__file__, opened)\n"
        "sys.exit(3 if opened else 0)\n"
    )
    result = subprocess.run(
        [python, "-I", "-c", probe],
        user=uid,
        group=gid,
        extra_groups=[],
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"setup: the sandbox user's view is wrong:\n{result.stdout}{result.stderr}")
    log(f"the sandbox user imports {result.stdout.split()[0]} and reads nothing of the grader's")


def self_test(python: str, trusted: Path) -> None:
    """Grade the course's example solution as a student's submission: it must get full marks."""
    example = trusted / "grader" / "examples" / "correct_course"
    with tempfile.TemporaryDirectory(prefix="grader-self-test-") as folder:
        results = Path(folder) / "results" / "results.json"
        command = [python, "-I", str(trusted / "autograde.py"), "--submission", str(example)]
        command += ["--results", str(results), "--autograder-root", str(Path(folder) / "none")]
        subprocess.run(command, check=True, stdin=subprocess.DEVNULL)
        document = json.loads(results.read_text())
    failed = [test["name"] for test in document["tests"] if test["status"] != "passed"]
    if failed:
        raise SystemExit(f"setup: the example solution fails {', '.join(failed)}: this image cannot grade")
    log(f"the example solution gets full marks ({document['score']:g})")


if __name__ == "__main__":
    sys.exit(main())
