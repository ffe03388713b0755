"""The sandbox's evaluator: run a plan's probes on the student's code and write raw outputs, nothing more.

It never sees the reference, expected values, thresholds or points; every judgement is made outside,
after it has finished. Each probe runs in a fresh child process with its own time limit, so a probe that
hangs or crashes fails alone. Standard library and numpy only.

usage: python -I runner.py (--job DIR | --stdin) (--out DIR | --stream) --scratch DIR [--scaffold DIR]
  the job is plan.json, inputs.npz and submission/<graded files>, as a folder or a tar on stdin;
  results go to OUT/p<index>.{json,npz}, or as frames on stdout (the Docker sandbox).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import importlib.abc
import importlib.util
import io
import json
import os
import py_compile
import resource
import select
import shutil
import signal
import struct
import sys
import tarfile
import tempfile
import time
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # python -I leaves the script's folder out of sys.path

import numpy as np  # noqa: E402
import recipes  # type: ignore[import-not-found]  # noqa: E402

MODULE_FILES = {
    "layers": "layers.py",
    "optim": "optim.py",
    "fc_net": "classifiers/fc_net.py",
    "layer_utils": "layer_utils.py",
    "solver": "solver.py",
    "gradient_check": "gradient_check.py",
}
STUDENT_FILES = {"layers.py": "layers.py", "optim.py": "optim.py", "fc_net.py": "classifiers/fc_net.py"}
SCAFFOLD_FILES = {"solver.py": "solver.py", "gradient_check.py": "gradient_check.py"}
LOG_TAIL_BYTES = 4096
# The statuses a probe's own process may report; the others are the runner's to decide.
CHILD_STATUSES = frozenset({"ok", "error", "invalid_output", "memory_limit"})


def sanitize(text: str, limit: int) -> str:
    """Printable text only (no ANSI escapes or NULs), at most `limit` characters from the end."""
    cleaned: str = recipes.UNPRINTABLE.sub("", text)
    return cleaned if len(cleaned) <= limit else "..." + cleaned[-limit:]


# ---------------------------------------------------------------------------------------------- package


def build_package(submission: Path, scaffold: Path, root: Path, package: str) -> None:
    """Lay out the package the student's imports expect: uploaded files plus the course's scaffolding."""
    pkg = root / package
    (pkg / "classifiers").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "classifiers" / "__init__.py").write_text("")
    for uploaded, target in STUDENT_FILES.items():
        if (submission / uploaded).is_file():
            shutil.copyfile(submission / uploaded, pkg / target)
    own_utils = submission / "layer_utils.py"
    shutil.copyfile(own_utils if own_utils.is_file() else scaffold / "layer_utils.py", pkg / "layer_utils.py")
    for provided, target in SCAFFOLD_FILES.items():
        shutil.copyfile(scaffold / provided, pkg / target)


def precompile(root: Path, time_limit: float = 10.0) -> None:
    """Byte-compile the package once, in a child with a time limit, so that no probe compiles it again.

    Compiling runs none of the code; a file that does not compile simply gets no .pyc, and its import
    reports the SyntaxError in the probes as usual.
    """
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            for source in sorted(root.rglob("*.py")):
                py_compile.compile(str(source), doraise=False, quiet=2)
        finally:
            os._exit(0)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.setpgid(pid, pid)
    if wait_exit(pid, time.monotonic() + time_limit) is None:
        kill_group(pid)
        os.waitpid(pid, 0)


class _ExistingModule(importlib.abc.Loader):
    def __init__(self, module: types.ModuleType) -> None:
        self.module = module

    def create_module(self, spec: Any) -> types.ModuleType:
        return self.module

    def exec_module(self, module: types.ModuleType) -> None:
        """Already executed under its primary name."""


class PackageAlias(importlib.abc.MetaPathFinder):
    """Make `alias.x.y` the very same module object as `package.x.y` (courses renamed cs231n to daseCV)."""

    def __init__(self, alias: str, package: str) -> None:
        self.alias, self.package = alias, package

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.alias and not fullname.startswith(self.alias + "."):
            return None
        module = importlib.import_module(self.package + fullname[len(self.alias) :])
        return importlib.util.spec_from_loader(fullname, _ExistingModule(module))


def import_modules(package: str, names: list[str], pkg_root: Path) -> types.SimpleNamespace:
    namespace = types.SimpleNamespace()
    for name in names:
        if not (pkg_root / package / MODULE_FILES[name]).is_file():
            raise ModuleNotFoundError(f"{Path(MODULE_FILES[name]).name} was not submitted")
        dotted = MODULE_FILES[name][: -len(".py")].replace("/", ".")
        setattr(namespace, name, importlib.import_module(f"{package}.{dotted}"))
    return namespace


# ------------------------------------------------------------------------------------------------ child


def short_traceback(exc: BaseException, pkg_root: Path) -> str:
    """The exception and the frames inside the submitted package only, with paths made relative."""
    lines = []
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith(str(pkg_root)):
            relative = Path(frame.filename).relative_to(pkg_root).as_posix().split("/", 1)[-1]
            lines.append(f'  File "{relative}", line {frame.lineno}, in {frame.name}')
            if frame.line:
                lines.append(f"    {frame.line.strip()}")
    if isinstance(exc, SyntaxError) and exc.filename and exc.filename.startswith(str(pkg_root)):
        relative = Path(exc.filename).relative_to(pkg_root).as_posix().split("/", 1)[-1]
        lines.append(f'  File "{relative}", line {exc.lineno}')
    try:
        detail = str(exc)
    except BaseException:  # the student's own exception class decides what str() does
        detail = "(its message cannot be shown)"
    lines.append(f"{type(exc).__name__}: {detail[:500]}" if detail else type(exc).__name__)
    return sanitize("\n".join(lines[-12:]), 3000)


def child_main(
    probe: dict[str, Any],
    inputs: dict[str, np.ndarray],
    plan: dict[str, Any],
    pkg_root: Path,
    write_fd: int,
    log_fd: int,
) -> None:
    """Runs in the forked child: import, call, send the outputs up the pipe. Never returns."""
    header: dict[str, Any] = {"status": "ok", "message": "", "invalid": {}}
    payload = b""
    try:
        os.setpgid(0, 0)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the runner ignores it; Python's default
        limits = plan.get("limits", {})
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.get("file_bytes", 8 << 20),) * 2)
        # Python ignores SIGXFSZ, so a write past the limit would only raise OSError (EFBIG) into the
        # student's code; with the default action the kernel ends the child and it is an output_limit.
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        if limits.get("memory_bytes"):
            resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"],) * 2)
        sys.path.insert(0, str(pkg_root))
        for alias in plan.get("package_aliases", []):
            sys.meta_path.insert(0, PackageAlias(alias, plan["package"]))
        np.random.seed(0)
        modules = import_modules(plan["package"], probe["modules"], pkg_root)
        result = recipes.RECIPES[probe["recipe"]](modules, inputs, probe.get("options", {}))
        buffer = io.BytesIO()
        np.savez(buffer, **result.arrays)
        payload = buffer.getvalue()
        header["invalid"] = result.invalid
    except recipes.InvalidOutput as exc:
        header = {"status": "invalid_output", "message": str(exc), "invalid": {}}
    except MemoryError as exc:
        header = {"status": "memory_limit", "message": short_traceback(exc, pkg_root), "invalid": {}}
    except BaseException as exc:
        header = {"status": "error", "message": short_traceback(exc, pkg_root), "invalid": {}}
        header["exception"] = type(exc).__name__
    try:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a full disk or a replaced stream must not cost the result
                stream.flush()
        encoded = json.dumps(header).encode()
        os.write(write_fd, struct.pack(">I", len(encoded)) + encoded)
        view = memoryview(payload)
        while view:
            view = view[os.write(write_fd, view) :]
    finally:
        os._exit(0)


# ----------------------------------------------------------------------------------------------- parent


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def kill_strays(grace: float = 5.0) -> None:
    """As the container's PID 1, end every other process: daemons that left the probe's process group too.

    It waits until they are all gone (reaped, as their PID 1), so that the next probe finds their process
    slots and memory free. Only in a container: outside one, kill(-1) would reach every process of the user.
    """
    if os.getpid() != 1:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGKILL)
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # nobody left but us
        if pid == 0:
            time.sleep(0.0002)  # a killed process is gone within microseconds; do not idle a millisecond


def reap_all() -> None:
    """Collect every finished child, including orphans handed to us when we are the container's PID 1."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def read_until_eof(read_fd: int, deadline: float) -> tuple[bytes, str | None]:
    """Everything the child sends, or a failure status: timeout or output_limit."""
    chunks: list[bytes] = []
    total = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b"", "timeout"
        ready, _, _ = select.select([read_fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(read_fd, 1 << 16)
        if not chunk:
            return b"".join(chunks), None
        total += len(chunk)
        if total > recipes.MAX_RESULT_BYTES:
            return b"", "output_limit"
        chunks.append(chunk)


def wait_exit(pid: int, deadline: float) -> int | None:
    """The child's wait status, or None if it is still alive at the deadline."""
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.0002)  # the child has sent its result and is exiting: this is short
    return None


def crash_status(status: int | None) -> tuple[str, str]:
    if status is None:
        return "timeout", "the code did not finish within the time limit"
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number == signal.SIGXFSZ:
            return "output_limit", "the code printed or wrote more than the output limit"
        return "crashed", f"the process was killed by signal {signal.Signals(number).name}"
    return "crashed", f"the process exited (code {os.WEXITSTATUS(status)}) before returning a result"


def parse_child_result(data: bytes) -> tuple[dict[str, Any], bytes] | None:
    if len(data) < 4:
        return None
    (length,) = struct.unpack(">I", data[:4])
    if length > 1 << 20 or len(data) < 4 + length:
        return None
    try:
        header = json.loads(data[4 : 4 + length])
    except ValueError:
        return None
    if not isinstance(header, dict) or header.get("status") not in CHILD_STATUSES:
        return None
    return clean_child_header(header), data[4 + length :]


def clean_child_header(header: dict[str, Any]) -> dict[str, Any]:
    """Known fields only, as printable text: student code can write to the result pipe too."""
    invalid = header.get("invalid")
    cleaned: dict[str, Any] = {
        "status": header["status"],
        "message": sanitize(str(header.get("message", "")), 3000),
        "invalid": {
            sanitize(str(name), 64): sanitize(str(reason), 300)
            for name, reason in (list(invalid.items())[:200] if isinstance(invalid, dict) else [])
        },
    }
    if "exception" in header:
        cleaned["exception"] = sanitize(str(header["exception"]), 100)
    return cleaned


def run_probe(
    index: int,
    probe: dict[str, Any],
    inputs: dict[str, np.ndarray],
    plan: dict[str, Any],
    pkg_root: Path,
    scratch: Path,
) -> tuple[dict[str, Any], bytes]:
    log_fd = new_log(scratch)
    read_fd, write_fd = os.pipe()
    started = time.monotonic()
    deadline = started + float(probe.get("time_limit", 5.0))
    try:
        pid = os.fork()
    except OSError:
        for fd in (log_fd, read_fd, write_fd):
            os.close(fd)
        message = "the code could not be started: no process slot was free"
        return {"status": "crashed", "message": message, "invalid": {}, "stdout": "", "seconds": 0.0}, b""
    if pid == 0:
        os.close(read_fd)
        child_main(probe, inputs, plan, pkg_root, write_fd, log_fd)
    os.close(write_fd)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.setpgid(pid, pid)  # the child does it too; whichever runs first wins the race
    try:
        data, failure = read_until_eof(read_fd, deadline)
        status = None if failure else wait_exit(pid, deadline)
    finally:
        os.close(read_fd)
        kill_group(pid)
        kill_strays()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        reap_all()
    parsed = None if failure else parse_child_result(data)
    header: dict[str, Any]
    if failure:
        header = {
            "status": failure,
            "message": crash_status(None)[1]
            if failure == "timeout"
            else "the code produced more output than allowed",
            "invalid": {},
        }
        payload = b""
    elif parsed is None or status is None:
        code, message = crash_status(status)
        header, payload = {"status": code, "message": message, "invalid": {}}, b""
    else:
        header, payload = parsed
    header["stdout"] = read_log_tail(log_fd)
    os.close(log_fd)  # scratch space is small; the tail is all we keep
    header["seconds"] = float(f"{time.monotonic() - started:.4f}")
    return header, payload


def new_log(scratch: Path) -> int:
    """A file for the probe's stdout and stderr that only the returned descriptor reaches (it has no name):
    no link or FIFO that student code plants at a path can redirect it or block the runner reading it."""
    fd, path = tempfile.mkstemp(prefix="probe-", suffix=".log", dir=scratch)
    os.unlink(path)
    return fd


def read_log_tail(fd: int) -> str:
    size = os.fstat(fd).st_size
    tail = os.pread(fd, LOG_TAIL_BYTES, max(0, size - LOG_TAIL_BYTES))
    return sanitize(tail.decode("utf-8", "replace"), 2000)


def files_under(folder: Path) -> frozenset[str]:
    """The paths of everything under `folder`, relative to it (the runner's own files, before any probe)."""
    return frozenset(str(path.relative_to(folder)) for path in folder.rglob("*"))


def remove_left_behind(scratch: Path, keep: frozenset[str]) -> None:
    """Delete what a probe's code left on the writable file systems (all but `keep` under scratch; in a
    container, /tmp and /dev/shm too), so that no full disk or planted file reaches a later probe.

    Runs when no student process is left; best effort, and it never fails the run.
    """
    places = [(scratch, keep)]
    if os.getpid() == 1:
        places += [(Path("/tmp"), frozenset()), (Path("/dev/shm"), frozenset())]
        remove_ipc_objects()
    for folder, kept in places:
        pending = [(str(folder), "")]
        while pending:
            path, relative = pending.pop()
            with contextlib.suppress(OSError):
                for entry in os.scandir(path):
                    name = relative + entry.name
                    if name not in kept:
                        remove_tree(entry.path)
                    elif entry.is_dir(follow_symlinks=False):
                        pending.append((entry.path, name + "/"))


def remove_ipc_objects() -> None:
    """Remove the System V shared memory segments, message queues and semaphore sets of the container's
    own IPC namespace: they outlive the processes that made them, and their memory is the container's."""
    ipc_rmid = 0
    for table in ("shm", "msg", "sem"):
        try:
            with open(f"/proc/sysvipc/{table}") as listing:
                identifiers = [int(row.split()[1]) for row in listing.read().splitlines()[1:]]
        except (OSError, ValueError, IndexError):
            continue
        if not identifiers:
            continue  # the usual case: no need for libc at all
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        for identifier in identifiers:
            if table == "shm":
                libc.shmctl(identifier, ipc_rmid, None)
            elif table == "msg":
                libc.msgctl(identifier, ipc_rmid, None)
            else:
                libc.semctl(identifier, 0, ipc_rmid)


def remove_tree(path: str) -> None:
    """Delete a file, link or folder tree that student code made, whatever modes it gave its folders."""
    folders = []
    pending = [path]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            if os.path.islink(current) or not os.path.isdir(current):
                os.unlink(current)
                continue
            os.chmod(current, 0o700)
            folders.append(current)
            pending.extend(entry.path for entry in os.scandir(current))
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def write_new(path: Path, data: bytes) -> None:
    """Replace `path` with `data`, never following a link planted there by earlier student code."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def skip_reason(
    probe: dict[str, Any], import_failures: dict[str, dict[str, str]], hanging: set[str]
) -> dict[str, Any] | None:
    """A probe is not run when a module it needs cannot be imported or a function it calls hangs."""
    # An import probe names its module last, after the modules it depends on.
    needed = probe["modules"][:-1] if probe["recipe"] == "import" else probe["modules"]
    for module in needed:
        failure = import_failures.get(module)
        if failure:
            return {
                "status": failure["status"],
                "message": failure["message"],
                "invalid": {},
                "skipped": True,
            }
    for function in probe.get("calls", []):
        if function in hanging:
            return {
                "status": "timeout",
                "invalid": {},
                "skipped": True,
                "message": f"not run: {function} did not finish within the time limit in an earlier probe",
            }
    return None


def record_failures(
    probe: dict[str, Any],
    header: dict[str, Any],
    import_failures: dict[str, dict[str, str]],
    hanging: set[str],
) -> None:
    if probe["recipe"] == "import" and header["status"] != "ok":
        module = probe["modules"][-1]
        import_failures[module] = {
            "status": header["status"],
            "message": f"importing {Path(MODULE_FILES[module]).name} failed:\n" + header["message"],
        }
    if header["status"] == "timeout" and not header.get("skipped") and len(probe.get("calls", [])) == 1:
        hanging.add(probe["calls"][0])


Emit = Callable[[int, bytes, bytes], None]


def file_emitter(out: Path) -> Emit:
    """Results as files out/p<index>.npz and .json (the JSON last: its presence means "finished")."""

    def emit(index: int, header: bytes, payload: bytes) -> None:
        if index == recipes.READY_INDEX:
            write_new(out / "ready", b"")
            return
        write_new(out / f"p{index}.npz", payload)
        write_new(out / f"p{index}.json", header)

    return emit


def stream_emitter(fd: int) -> Emit:
    """Results as frames on `fd` (the container's stdout), which no student process holds."""

    def emit(index: int, header: bytes, payload: bytes) -> None:
        view = memoryview(
            recipes.FRAME.pack(recipes.FRAME_MAGIC, index, len(header), len(payload)) + header + payload
        )
        while view:
            view = view[os.write(fd, view) :]

    return emit


def make_non_dumpable() -> None:
    """Forbid same-user processes (the student's) to read our memory or open /proc/<our pid>/fd."""
    import ctypes

    pr_set_dumpable = 4
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_dumpable, 0, 0, 0, 0)


def receive_job(stream: BinaryIO, job: Path) -> None:
    """Unpack the job (plan.json, inputs.npz, submission/*) sent as a tar on stdin, then close stdin."""
    job.mkdir(parents=True)
    # The tar comes from the trusted side; the "data" filter (where this Python has it) is a second guard.
    safety = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(fileobj=stream, mode="r|") as archive:
        archive.extractall(job, **safety)  # type: ignore[arg-type]
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)


def warm_up() -> None:
    """Do once here what every child would otherwise do again: numpy's lazy imports, and a GC-stable heap."""
    np.savez(io.BytesIO(), warm=np.zeros(1))  # imports zipfile and numpy's writers
    np.random.seed(0)  # numpy 2 imports numpy.random lazily, at ~13 ms a child
    importlib.util.find_spec("json")
    gc.freeze()  # children must not copy our heap page by page when their garbage collector walks it


def run_plan(job: Path, scratch: Path, scaffold: Path, emit: Emit) -> None:
    plan = json.loads((job / "plan.json").read_text())
    with np.load(job / "inputs.npz", allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    pkg_root = scratch / "pkg"
    build_package(job / "submission", scaffold, pkg_root, plan["package"])
    precompile(pkg_root)
    runner_files = files_under(scratch)
    emit(recipes.READY_INDEX, b"", b"")  # from here on, whatever fails is a probe's doing, not the sandbox's
    import_failures: dict[str, dict[str, str]] = dict(plan.get("import_failures", {}))
    hanging = set(plan.get("hanging", []))
    gc.freeze()  # again: the plan and inputs were loaded after warm_up
    for probe in plan["probes"]:
        index = probe["index"]
        inputs = {name: arrays[key] for name, key in probe.get("inputs", {}).items()}
        header = skip_reason(probe, import_failures, hanging)
        payload = b""
        if header is None:
            header, payload = run_probe(index, probe, inputs, plan, pkg_root, scratch)
            remove_left_behind(scratch, runner_files)
        record_failures(probe, header, import_failures, hanging)
        emit(index, json.dumps(header).encode(), payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--job", type=Path, help="the job folder")
    source.add_argument("--stdin", action="store_true", help="receive the job as a tar on stdin")
    sink = parser.add_mutually_exclusive_group(required=True)
    sink.add_argument("--out", type=Path, help="write results as files into this folder")
    sink.add_argument("--stream", action="store_true", help="write results as frames on stdout")
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--scaffold", type=Path, default=HERE / "scaffold")
    args = parser.parse_args()
    sys.dont_write_bytecode = True
    # As the container's PID 1 the kernel already drops the signals we have no handler for; Python's
    # SIGINT handler would let student code end the whole run with os.kill(1, SIGINT).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if args.stream:
        make_non_dumpable()
    warm_up()  # before the job arrives: a pre-started container has done it already
    job = args.job
    if args.stdin:
        job = args.scratch / "job"
        receive_job(sys.stdin.buffer, job)
    emit = stream_emitter(sys.stdout.fileno()) if args.stream else file_emitter(args.out)
    run_plan(job, args.scratch, args.scaffold, emit)


if __name__ == "__main__":
    main()
