"""The sandbox's evaluator: run a plan's probes on the student's code and write raw outputs, nothing more.

It never sees the reference, expected values, thresholds or points; every judgement is made outside,
after it has finished. Each probe runs in a child process with its own limits, so a probe that hangs or
crashes fails alone; a child may take several probes of the same modules while each leaves it as the
import did (see "probe servers"). Standard library and numpy only.

usage: python -I runner.py (--job DIR | --stdin) (--out DIR | --stream) --scratch DIR [--scaffold DIR]
                           [--no-servers]
  the job is plan.json, inputs.npz and submission/<graded files>, as a folder or a tar on stdin;
  results go to OUT/p<index>.{json,npz}, or as frames on stdout (the Docker sandbox).
"""

from __future__ import annotations

import argparse
import builtins
import collections
import contextlib
import gc
import importlib
import importlib.abc
import importlib.util
import io
import itertools
import json
import math
import operator
import os
import py_compile
import resource
import select
import shutil
import signal
import socket
import struct
import sys
import tarfile
import tempfile
import time
import traceback
import types
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

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
# Uploaded graded files and where they go in the package; the scaffold provides every other module.
STUDENT_FILES = {
    "layers.py": "layers.py",
    "optim.py": "optim.py",
    "fc_net.py": "classifiers/fc_net.py",
    "layer_utils.py": "layer_utils.py",
}
LOG_TAIL_BYTES = 4096
# The statuses a probe's own process may report; the others are the runner's to decide.
CHILD_STATUSES = frozenset({"ok", "error", "invalid_output", "memory_limit"})


def sanitize(text: str, limit: int) -> str:
    """Printable text only (no ANSI escapes or NULs), at most `limit` characters from the end."""
    cleaned: str = recipes.UNPRINTABLE.sub("", text)
    return cleaned if len(cleaned) <= limit else "..." + cleaned[-limit:]


# ---------------------------------------------------------------------------------------------- package


def build_package(submission: Path, scaffold: Path, root: Path, package: str) -> None:
    """Lay out the package the student's imports expect: the course's every module, then the uploads.

    The scaffold holds course-compatible copies of every module of the course's package (fast_layers,
    im2col, solver, classifiers/cnn, ...), so that any of them a student's file imports is there; the
    graded files uploaded replace the scaffold's copies of the same name (layer_utils.py is optional).
    """
    pkg = root / package
    (pkg / "classifiers").mkdir(parents=True)
    for provided in sorted(scaffold.rglob("*.py")):
        target = pkg / provided.relative_to(scaffold)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(provided, target)
    for init in (pkg / "__init__.py", pkg / "classifiers" / "__init__.py"):
        if not init.exists():
            init.write_text("")
    for uploaded, place in STUDENT_FILES.items():
        if (submission / uploaded).is_file():
            shutil.copyfile(submission / uploaded, pkg / place)


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


class ForbiddenModules(importlib.abc.MetaPathFinder):
    """Refuse to import some modules of the package under any of its names: the course's architecture
    composed from the student's layers must run where the student's model cannot (fc_net)."""

    def __init__(self, names: Collection[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname in self.names:
            raise ImportError(f"{fullname} cannot be imported by this probe, which runs your layers only")
        return None


def forbid_imports(plan: dict[str, Any], relative: Collection[str]) -> None:
    """Install ForbiddenModules for `relative` (e.g. classifiers.fc_net) under the package and its aliases."""
    if relative:
        packages = [plan["package"], *plan.get("package_aliases", [])]
        sys.meta_path.insert(0, ForbiddenModules({f"{p}.{m}" for p in packages for m in relative}))


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


def enter_child(plan: dict[str, Any], pkg_root: Path, keep: Collection[int]) -> None:
    """What every process that runs student code does first: its own process group, none of the runner's
    files (its stdout carries the results), no stdin, the probe's limits, and the package on the path."""
    os.setpgid(0, 0)
    close_inherited(keep)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
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


def close_inherited(keep: Collection[int]) -> None:
    """Close every descriptor above stderr but `keep`."""
    low = 3
    for fd in sorted(keep):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def flush_output() -> None:
    """Flush what Python still buffers for stdout and stderr (a replaced or broken stream cannot stop us)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def redirect_output(log_fd: int) -> None:
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)


def probe_result(
    probe: dict[str, Any],
    inputs: dict[str, np.ndarray],
    pkg_root: Path,
    modules: Callable[[], types.SimpleNamespace],
) -> tuple[dict[str, Any], bytes]:
    """Run the probe's recipe on the student's modules: its header and npz payload, whatever happens."""
    header: dict[str, Any] = {"status": "ok", "message": "", "invalid": {}}
    payload = b""
    try:
        result = recipes.RECIPES[probe["recipe"]](modules(), inputs, probe.get("options", {}))
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
    return header, payload


def write_result(write_fd: int, header: dict[str, Any], payload: bytes) -> None:
    """Send a probe's result up its pipe (after what it printed, so that no output is lost)."""
    flush_output()
    encoded = json.dumps(header).encode()
    os.write(write_fd, struct.pack(">I", len(encoded)) + encoded)
    view = memoryview(payload)
    while view:
        view = view[os.write(write_fd, view) :]


def send_result(write_fd: int, header: dict[str, Any], payload: bytes) -> NoReturn:
    """Send the result and end the process."""
    try:
        write_result(write_fd, header, payload)
    finally:
        os._exit(0)


def child_main(
    probe: dict[str, Any],
    inputs: dict[str, np.ndarray],
    plan: dict[str, Any],
    pkg_root: Path,
    write_fd: int,
    log_fd: int,
) -> NoReturn:
    """Runs in a child forked from the runner: set up, import, call, send the outputs up the pipe."""
    try:
        enter_child(plan, pkg_root, keep=(write_fd, log_fd))
        redirect_output(log_fd)
    except BaseException as exc:
        header = {"status": "error", "message": short_traceback(exc, pkg_root), "invalid": {}}
        send_result(write_fd, header, b"")
    forbid_imports(plan, probe.get("forbid", []))
    header, payload = probe_result(
        probe, inputs, pkg_root, lambda: import_modules(plan["package"], probe["modules"], pkg_root)
    )
    send_result(write_fd, header, payload)


# ---------------------------------------------------------------------------------------- probe servers
#
# Starting a process, importing the student's modules and ending the process again costs more than most
# probes themselves. A probe server is a child like any other for its first probe (it imports the
# modules during it, with that probe's limits, output and time), and then takes further probes of the
# same modules for as long as each one leaves the process as it found it right after the import
# (process_state). Any difference, any failure, and it ends: the next probe gets a new server, so what
# one probe does to its process does not reach another. A server is only a shortcut: a probe it does
# not take runs in a child of its own.

SERVER_ACCEPTED = b"A"
FORBIDDEN_MARK = "!"  # in a server's module key: a module its probes may not import
POSITION = struct.Struct(">I")
WATCHED_SIGNALS = tuple(
    s for s in signal.Signals if s not in (signal.SIGKILL, signal.SIGSTOP) and s < signal.NSIG
)
WATCHED_LIMITS = tuple(
    getattr(resource, name)
    for name in ("RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_CORE", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CPU")
    if hasattr(resource, name)
)
TIMERS = (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF)
MAX_GROWTH_PAGES = (64 << 20) // resource.getpagesize()  # memory a probe may leave allocated
SMALL_ARRAY_BYTES = 1 << 16  # module-level arrays up to this size are compared by content


@dataclass
class ProcessState:
    """A process's state, in two parts compared without running any of the student's code: `plain`
    holds only values the runner builds itself (ints, strings, bytes and tuples of them), compared with
    ==; `objects` holds everything else, compared one by one by identity (holding them here keeps their
    ids from being reused by new objects)."""

    plain: list[Any] = field(default_factory=list)
    objects: list[object] = field(default_factory=list)

    def same_as(self, other: ProcessState) -> bool:
        return (
            len(self.objects) == len(other.objects)
            and self.plain == other.plain
            and all(map(operator.is_, self.objects, other.objects))
        )

    def add_namespace(self, namespace: dict[Any, Any]) -> None:
        self.plain.append(len(namespace))
        self.objects.extend(itertools.chain.from_iterable(list(namespace.items())))

    def add_in_place_state(self, value: Any, depth: int = 1) -> None:
        """What changing a value in place would change, for the plain types of Python and numpy (exact
        types only: a subclass's methods are the student's): the entries of a dict or list, the size of
        a set, the content of a small array, the attributes and defaults of a function."""
        kind = type(value)
        if kind is dict:
            self.plain.append(dict.__len__(value))
            self.objects.extend(itertools.chain.from_iterable(itertools.islice(dict.items(value), 1000)))
        elif kind is list:
            self.plain.append(list.__len__(value))
            self.objects.extend(list.__getitem__(value, slice(0, 1000)))
        elif kind in (set, bytearray):
            self.plain.append(len(value))
        elif kind is np.ndarray:
            self.plain.append(value.tobytes() if value.nbytes <= SMALL_ARRAY_BYTES else value.shape)
        elif kind is types.FunctionType:
            self.objects += [value.__defaults__, value.__kwdefaults__]
            self.add_namespace(value.__dict__)
            if depth and value.__defaults__:
                for default in value.__defaults__:
                    self.add_in_place_state(default, depth - 1)


def open_descriptors() -> set[int]:
    """The descriptors open now (not counting the one that lists them, closed once it has)."""
    listed = [int(name) for name in os.listdir("/proc/self/fd")]
    return {fd for fd in listed if os.path.lexists(f"/proc/self/fd/{fd}")}


def child_processes() -> str:
    """The children of this process (a probe's daemon would be one): from /proc, where the kernel has it."""
    try:
        with open(f"/proc/self/task/{os.getpid()}/children") as listing:
            return listing.read()
    except OSError:
        return ""


def process_state(watched: list[Any], student: list[Any], probe_fds: Collection[int] = ()) -> ProcessState:
    """What a probe must leave as it found it for the next probe to run as if in a fresh process:
    threads, child processes, descriptors, signal handlers and timers, limits, umask, working
    directory, environment, numpy's error handling, warning filters, the import system, the namespaces
    of numpy, sys and the runner, and those of the student's modules and classes with the in-place
    state of their values."""
    umask = os.umask(0o022)
    os.umask(umask)
    state = ProcessState()
    state.plain += [
        len(os.listdir("/proc/self/task")),
        child_processes(),
        sorted(open_descriptors() - set(probe_fds)),
        [signal.getitimer(timer) for timer in TIMERS],
        [resource.getrlimit(limit) for limit in WATCHED_LIMITS],
        umask,
        (os.getpgid(0), os.getsid(0)),
        os.getcwd(),
        dict(os.environ),  # keys and values are always plain strings
        sorted(np.geterr().items()),
        (sys.getrecursionlimit(), gc.isenabled(), gc.get_threshold()),
        (len(sys.path), len(sys.meta_path), len(warnings.filters), len(sys.modules)),
    ]
    state.objects += [signal.getsignal(number) for number in WATCHED_SIGNALS]
    state.objects += [sys.gettrace(), sys.getprofile(), sys.stdin, sys.stdout, sys.stderr]
    state.objects += [*sys.path, *sys.meta_path, *warnings.filters]
    for namespace in (*watched, *student):
        state.add_namespace(namespace.__dict__)
    for namespace in student:
        for value in list(namespace.__dict__.values()):
            state.add_in_place_state(value)
    return state


def memory_pages() -> tuple[int, int]:
    """The address space and the resident memory of this process, in pages."""
    with open("/proc/self/statm") as statm:
        size, resident = statm.read().split()[:2]
    return int(size), int(resident)


def plain_namespaces(package: str) -> list[Any]:
    """Every module of the student's package and every class defined in them, of the plain types only
    (module and type: reading another kind's namespace could run the student's code)."""
    namespaces: list[Any] = []
    for name, module in list(sys.modules.items()):
        if type(module) is types.ModuleType and (name == package or name.startswith(package + ".")):
            namespaces.append(module)
            namespaces += [value for value in module.__dict__.values() if type(value) is type]
    return namespaces


@dataclass
class Snapshot:
    """A server's state right after its import: what every later probe must find again."""

    printed: bytes  # what the import printed, which belongs to every probe's output
    random_state: Any
    watched: list[Any]
    student: list[Any]
    state: ProcessState
    memory: tuple[int, int]

    def unchanged(self, probe_fds: Collection[int]) -> bool:
        """Whether the process is as the import left it (but for this probe's descriptors)."""
        gc.collect()  # finalizers of the probe's garbage run now, before the check, not in a later probe
        if not process_state(self.watched, self.student, probe_fds).same_as(self.state):
            return False
        return all(
            now <= then + MAX_GROWTH_PAGES for now, then in zip(memory_pages(), self.memory, strict=True)
        )


def take_snapshot(package: str, probe_fds: Collection[int], output_fd: int) -> Snapshot | None:
    """The state the import left, or None if it cannot be taken (then the server serves no more; the
    probe itself is not concerned: a child of its own would not have taken one)."""
    try:
        flush_output()
        if len(os.listdir("/proc/self/task")) != 1:
            return None  # a thread of the import's would run beside every probe: no state to serve from
        printed = os.pread(output_fd, LOG_TAIL_BYTES, max(0, os.fstat(output_fd).st_size - LOG_TAIL_BYTES))
        watched = [np, np.random, np.linalg, np.lib, math, builtins, sys, recipes, sys.modules["__main__"]]
        student = plain_namespaces(package)
        gc.collect()
        state = process_state(watched, student, probe_fds)
        return Snapshot(printed, np.random.get_state(), watched, student, state, memory_pages())
    except Exception:
        return None


def server_main(
    control: socket.socket,
    modules: list[str],
    plan: dict[str, Any],
    pkg_root: Path,
    probe_at: Callable[[int], tuple[dict[str, Any], dict[str, np.ndarray]]],
) -> NoReturn:
    """Runs in a child forked from the runner: take probes until one changes the process or fails.

    Whether the server takes another probe is decided before the result is sent (and sent with it,
    as "reuse"), so that the runner can end a server that will not serve again before it looks for
    processes a probe left behind."""
    imported: types.SimpleNamespace | None = None
    snapshot: Snapshot | None = None

    forbidden = [module[1:] for module in modules if module.startswith(FORBIDDEN_MARK)]
    modules = [module for module in modules if not module.startswith(FORBIDDEN_MARK)]

    def import_for_first_probe() -> types.SimpleNamespace:
        nonlocal imported, snapshot
        imported = import_modules(plan["package"], modules, pkg_root)
        snapshot = take_snapshot(plan["package"], (write_fd, output_copy), output_copy)
        return imported

    def modules_imported_before() -> types.SimpleNamespace:
        assert imported is not None
        return imported

    try:
        enter_child(plan, pkg_root, keep=(control.fileno(),))
        forbid_imports(plan, forbidden)
        silence_output()
    except BaseException:
        os._exit(0)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, POSITION.size, 2)
            if len(message) != POSITION.size or len(fds) != 2:
                os._exit(0)  # the runner closed the channel
            write_fd, log_fd = fds
            control.send(SERVER_ACCEPTED)
            output_copy = os.dup(log_fd)  # ours, to read what the import printed, whatever fd 1 becomes
            redirect_output(log_fd)
            probe, inputs = probe_at(POSITION.unpack(message)[0])
            if imported is None:
                header, payload = probe_result(probe, inputs, pkg_root, import_for_first_probe)
            else:
                if snapshot is not None and snapshot.printed:
                    os.write(output_copy, snapshot.printed)
                if snapshot is not None:
                    np.random.set_state(snapshot.random_state)  # as a fresh process would find it
                header, payload = probe_result(probe, inputs, pkg_root, modules_imported_before)
            reuse = (
                header["status"] == "ok"
                and snapshot is not None
                and snapshot.unchanged((write_fd, output_copy))
            )
            header["reuse"] = reuse
            write_result(write_fd, header, payload)
            os.close(write_fd)
            os.close(output_copy)
            silence_output()
            if not reuse:
                os._exit(0)
        except BaseException:
            os._exit(0)


def silence_output() -> None:
    """Point stdout and stderr at /dev/null, letting go of the last probe's output file."""
    flush_output()
    redirect_output(os.open(os.devnull, os.O_WRONLY))


@dataclass
class ProbeServer:
    pid: int
    control: socket.socket
    modules: tuple[str, ...]


class ProbeServers:
    """The run's probe servers, one per set of modules a probe imports (a module's import probe names
    its dependencies too: `fc_net` probes share the server of the import probe of `fc_net`)."""

    def __init__(
        self,
        plan: dict[str, Any],
        pkg_root: Path,
        probe_at: Callable[[int], tuple[dict[str, Any], dict[str, np.ndarray]]],
        enabled: bool,
    ) -> None:
        self.plan, self.pkg_root, self.probe_at = plan, pkg_root, probe_at
        self.enabled = enabled and sys.platform == "linux"
        self.live: dict[tuple[str, ...], ProbeServer] = {}
        self.with_dependencies = {
            probe["modules"][-1]: tuple(probe["modules"])
            for probe in plan["probes"]
            if probe["recipe"] == "import"
        }
        self.to_come = collections.Counter(self.modules_of(probe) for probe in plan["probes"])

    def modules_of(self, probe: dict[str, Any]) -> tuple[str, ...]:
        """What a probe's process imports: its modules, each after the modules it depends on, then the
        modules it must not import (marked), so that such probes share no server with the others."""
        modules: dict[str, None] = {}
        for module in probe["modules"]:
            modules.update(dict.fromkeys(self.with_dependencies.get(module, (module,))))
        return (*modules, *(FORBIDDEN_MARK + module for module in probe.get("forbid", [])))

    def pids(self) -> set[int]:
        return {server.pid for server in self.live.values()}

    def prepare(self, probe: dict[str, Any]) -> ProbeServer | None:
        """The server for this probe's modules, started if need be; None: run it in a child of its own
        (servers are off, or no other probe to come imports the same modules)."""
        modules = self.modules_of(probe)
        server = self.live.get(modules)
        if server is not None and select.select([server.control], [], [], 0)[0]:
            self.end(server)  # it has ended itself: its last probe failed or changed its state
            server = None
        if server is None and self.enabled and self.to_come[modules] > 1:
            server = self._start(modules)
        return server

    def done(self, probe: dict[str, Any]) -> None:
        """The probe is over (run or skipped): end its server if no probe to come needs it."""
        modules = self.modules_of(probe)
        self.to_come[modules] -= 1
        if self.to_come[modules] <= 0 and modules in self.live:
            self.end(self.live[modules])

    def launch(self, server: ProbeServer, position: int, write_fd: int, log_fd: int) -> None:
        """Hand the probe at `position` to `server`, without waiting: `took` says later whether it did
        (a server that has just ended drops the message, and with it the probe's pipe: its end comes)."""
        with contextlib.suppress(OSError):
            socket.send_fds(server.control, [POSITION.pack(position)], [write_fd, log_fd])

    def took(self, server: ProbeServer) -> bool:
        """Whether `server` took its probe; asked once its result pipe has ended. A server says so
        before it runs any of the probe's code, so by then the answer is there if it ever will be."""
        try:
            if not select.select([server.control], [], [], 0)[0]:
                return False
            return server.control.recv(1) == SERVER_ACCEPTED
        except OSError:
            return False

    def end(self, server: ProbeServer) -> None:
        """Stop using `server` and end it."""
        if self.live.get(server.modules) is server:
            del self.live[server.modules]
        server.control.close()
        kill_group(server.pid)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(server.pid, 0)

    def ended(self, pids: set[int]) -> None:
        """Forget the servers that have ended and been reaped: their pids may belong to others soon."""
        for server in [server for server in self.live.values() if server.pid in pids]:
            del self.live[server.modules]
            server.control.close()

    def forget(self) -> None:
        """Forget every server (the caller ends every process); new ones start on demand."""
        for server in self.live.values():
            server.control.close()
        self.live.clear()

    def close(self) -> None:
        for server in list(self.live.values()):
            self.end(server)

    def _start(self, modules: tuple[str, ...]) -> ProbeServer | None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            return None
        if pid == 0:
            ours.close()
            server_main(theirs, list(modules), self.plan, self.pkg_root, self.probe_at)
        theirs.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.setpgid(pid, pid)
        server = self.live[modules] = ProbeServer(pid, ours, modules)
        return server


# ----------------------------------------------------------------------------------------------- parent


def kill_group(pid: int) -> None:
    """Kill the process `pid` and its process group (it may have left the group: kill it by pid too)."""
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)


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


def reap_all() -> set[int]:
    """Collect every finished child, including orphans handed to us when we are the container's PID 1;
    the pids collected (free for the kernel to give again)."""
    reaped: set[int] = set()
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped.add(pid)


def read_until_eof(read_fd: int, deadline: float, emitter: Emitter) -> tuple[bytes, str | None]:
    """Everything the child sends, or a failure status: timeout or output_limit. Meanwhile the emitter
    sends on what it has pending."""
    chunks: list[bytes] = []
    total = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b"", "timeout"
        sending = emitter.waiting_fd()
        ready, writable, _ = select.select([read_fd], [] if sending is None else [sending], [], remaining)
        if writable:
            emitter.write_some()
        if not ready:
            continue
        chunk = os.read(read_fd, 1 << 16)
        if not chunk:
            return b"".join(chunks), None
        total += len(chunk)
        if total > recipes.MAX_RESULT_BYTES:
            return b"", "output_limit"
        chunks.append(chunk)


def wait_exit(pid: int, deadline: float, emitter: Emitter | None = None) -> int | None:
    """The child's wait status, or None if it is still alive at the deadline. Meanwhile the emitter
    sends on what it has pending: if the sandbox is stopped from outside during a long wait, the
    results of the probes before this one must already be out."""
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if emitter is not None:
            emitter.write_some()
        time.sleep(0.0002)  # the child has ended its output and is usually exiting: this is short
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
    if header.get("reuse") is True:
        cleaned["reuse"] = True  # a server's own verdict; the runner takes it out before emitting
    return cleaned


def run_probe(
    probe: dict[str, Any],
    inputs: dict[str, np.ndarray],
    plan: dict[str, Any],
    pkg_root: Path,
    servers: ProbeServers,
    emitter: Emitter,
) -> tuple[dict[str, Any], bytes]:
    """Run one probe in the probe server, or in a child of its own: its header and payload."""
    for _ in range(2):  # a server that ended before it took the probe: once more, with a new one
        server = servers.prepare(probe)  # before the probe's descriptors exist: no server may hold them
        if server is None:
            break
        result = run_in_process(probe, inputs, plan, pkg_root, servers, server, emitter)
        if result is not None:
            return result
    result = run_in_process(probe, inputs, plan, pkg_root, servers, None, emitter)
    assert result is not None  # a child of our own always takes its probe
    return result


def run_in_process(
    probe: dict[str, Any],
    inputs: dict[str, np.ndarray],
    plan: dict[str, Any],
    pkg_root: Path,
    servers: ProbeServers,
    server: ProbeServer | None,
    emitter: Emitter,
) -> tuple[dict[str, Any], bytes] | None:
    """Run the probe in `server`, or in a new child if None; None if the server did not take it."""
    log_fd = new_log()
    read_fd, write_fd = os.pipe()
    started = time.monotonic()
    deadline = started + float(probe.get("time_limit", 5.0))
    if server is not None:
        pid = server.pid
        servers.launch(server, probe["position"], write_fd, log_fd)
    else:
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
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.setpgid(pid, pid)  # the child does it too; whichever runs first wins the race
    os.close(write_fd)
    parsed, failure, taken, reuse = None, None, True, False
    try:
        data, failure = read_until_eof(read_fd, deadline, emitter)
        parsed = None if failure else parse_child_result(data)
        reuse = parsed is not None and parsed[0].pop("reuse", False) is True
        taken = server is None or servers.took(server)
        # A complete result needs no exit status; without one, the status says how the process ended.
        status = None if failure or parsed or not taken else wait_exit(pid, deadline, emitter)
    finally:
        os.close(read_fd)
        # A server that will not serve again ends now, before the look for processes left behind.
        end_probe_processes(pid, servers, None if server is None or (reuse and taken) else server)
    if not taken:
        os.close(log_fd)
        return None
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
    elif parsed is None:
        code, message = crash_status(status)
        header, payload = {"status": code, "message": message, "invalid": {}}, b""
    else:
        header, payload = parsed
    header["stdout"] = read_log_tail(log_fd)
    os.close(log_fd)
    header["seconds"] = float(f"{time.monotonic() - started:.4f}")
    return header, payload


def end_probe_processes(pid: int, servers: ProbeServers, failed_server: ProbeServer | None) -> None:
    """End the probe's process group (unless a server ran the probe and lives on to serve the next) and
    reap it; in a container, end whatever else it left running too (daemons that left its group), and
    with them the servers, which it may have tampered with."""
    if failed_server is not None:
        servers.end(failed_server)
    elif pid not in servers.pids():
        kill_group(pid)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    servers.ended(reap_all())
    if os.getpid() == 1 and other_processes(servers.pids()):
        servers.forget()
        kill_strays()


def other_processes(expected: set[int]) -> bool:
    """Whether a process other than us and `expected` exists (in a container, /proc shows only its own)."""
    known = expected | {1}
    return any(name.isdigit() and int(name) not in known for name in os.listdir("/proc"))


def new_log() -> int:
    """A file for the probe's stdout and stderr that only the returned descriptor reaches (it has no name):
    no link or FIFO that student code plants at a path can redirect it or block the runner reading it.
    Its size is bounded by the probe's file-size limit, and its memory is the container's."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("probe-output")
    fd, path = tempfile.mkstemp(prefix="probe-", suffix=".log")  # not Linux: a development machine
    os.unlink(path)
    return fd


def read_log_tail(fd: int) -> str:
    size = os.fstat(fd).st_size
    tail = os.pread(fd, LOG_TAIL_BYTES, max(0, size - LOG_TAIL_BYTES))
    return sanitize(tail.decode("utf-8", "replace"), 2000)


@dataclass(frozen=True)
class Baseline:
    """The writable file systems before any probe ran: the runner's own files."""

    places: tuple[Path, ...]  # scratch first; in a container, /tmp and /dev/shm too
    kept: frozenset[str]  # the runner's files, relative to scratch
    sweep_ipc: bool  # in a container whose IPC namespace can hold System V objects


def take_baseline(scratch: Path) -> Baseline:
    in_container = os.getpid() == 1
    places = (scratch, Path("/tmp"), Path("/dev/shm")) if in_container else (scratch,)
    kept = frozenset(str(path.relative_to(scratch)) for path in scratch.rglob("*"))
    return Baseline(places, kept, in_container and system_v_ipc_allowed())


def system_v_ipc_allowed() -> bool:
    """Whether the IPC namespace allows any segment, queue or semaphore set (the Docker sandbox sets
    these limits to zero; only a privileged process could raise them again)."""
    try:
        limits = [Path("/proc/sys/kernel", name).read_text().split() for name in ("shmmni", "msgmni", "sem")]
    except OSError:
        return True
    return any(value != "0" for values in limits for value in values)


def remove_left_behind(baseline: Baseline) -> bool:
    """Delete what a probe's code left on the writable file systems (all but the runner's files), so that
    no full disk or planted file reaches a later probe; whether there was anything to delete.

    Runs when no student process is left; best effort, and it never fails the run.
    """
    if baseline.sweep_ipc:
        remove_ipc_objects()
    removed = False
    for folder in baseline.places:
        kept = baseline.kept if folder == baseline.places[0] else frozenset()
        pending = [(str(folder), "")]
        while pending:
            path, relative = pending.pop()
            with contextlib.suppress(OSError):
                for entry in os.scandir(path):
                    name = relative + entry.name
                    if name not in kept:
                        remove_tree(entry.path)
                        removed = True
                    elif entry.is_dir(follow_symlinks=False):
                        pending.append((entry.path, name + "/"))
    return removed


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
                "message": import_failure_message(Path(MODULE_FILES[module]).name, failure["message"]),
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


def import_failure_message(file: str, message: str) -> str:
    """One line that says what failed and why, then the student's own frames (short_traceback's)."""
    lines = message.splitlines()
    frames = [line for line in lines if line.startswith(" ")]
    causes = [line for line in lines if line.strip() and not line.startswith(" ")]
    headline = f"{file} could not be imported" + (f": {causes[-1]}" if causes else "")
    return "\n".join([headline, *frames])


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
            "message": header.get("message", ""),
        }
    if header["status"] == "timeout" and not header.get("skipped") and len(probe.get("calls", [])) == 1:
        hanging.add(probe["calls"][0])


class FileEmitter:
    """Results as files out/p<index>.npz and .json (the JSON last: its presence means "finished")."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def emit(self, index: int, header: bytes, payload: bytes) -> None:
        if index == recipes.READY_INDEX:
            write_new(self.out / "ready", b"")
            return
        write_new(self.out / f"p{index}.npz", payload)
        write_new(self.out / f"p{index}.json", header)

    def waiting_fd(self) -> int | None:
        return None

    def write_some(self) -> None:
        """Files are written at once."""

    def finish(self) -> None:
        """Nothing is pending."""


class StreamEmitter:
    """Results as frames on `fd` (the container's stdout), which no student process holds.

    Writing does not wait for the reader: what the pipe does not take at once is sent while the next
    probe runs (the runner's waits include `waiting_fd`), so a large result costs the run no idle time.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending: collections.deque[memoryview] = collections.deque()
        os.set_blocking(fd, False)

    def emit(self, index: int, header: bytes, payload: bytes) -> None:
        frame = recipes.FRAME.pack(recipes.FRAME_MAGIC, index, len(header), len(payload))
        self.pending.append(memoryview(frame + header + payload))
        self.write_some()

    def waiting_fd(self) -> int | None:
        return self.fd if self.pending else None

    def write_some(self) -> None:
        while self.pending:
            try:
                written = os.write(self.fd, self.pending[0])
            except BlockingIOError:
                return
            if written == len(self.pending[0]):
                self.pending.popleft()
            else:
                self.pending[0] = self.pending[0][written:]

    def finish(self) -> None:
        os.set_blocking(self.fd, True)
        self.write_some()


Emitter = FileEmitter | StreamEmitter


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


def run_plan(job: Path, scratch: Path, scaffold: Path, emitter: Emitter, use_servers: bool = True) -> None:
    plan = json.loads((job / "plan.json").read_text())
    with np.load(job / "inputs.npz", allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    pkg_root = scratch / "pkg"
    build_package(job / "submission", scaffold, pkg_root, plan["package"])
    precompile(pkg_root)
    baseline = take_baseline(scratch)
    # From here on, whatever fails is a probe's doing, not the sandbox's.
    emitter.emit(recipes.READY_INDEX, b"", b"")
    import_failures: dict[str, dict[str, str]] = dict(plan.get("import_failures", {}))
    hanging = set(plan.get("hanging", []))
    probes = plan["probes"]
    for position, probe in enumerate(probes):
        probe["position"] = position

    def probe_at(position: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        probe = probes[position]
        return probe, {name: arrays[key] for name, key in probe.get("inputs", {}).items()}

    gc.freeze()  # again: the plan and inputs were loaded after warm_up
    servers = ProbeServers(plan, pkg_root, probe_at, enabled=use_servers)
    try:
        for probe in probes:
            index = probe["index"]
            header = skip_reason(probe, import_failures, hanging)
            payload = b""
            if header is None:
                inputs = probe_at(probe["position"])[1]
                header, payload = run_probe(probe, inputs, plan, pkg_root, servers, emitter)
                if remove_left_behind(baseline):
                    servers.close()  # their import may have made those files, and would not again
            servers.done(probe)
            record_failures(probe, header, import_failures, hanging)
            emitter.emit(index, json.dumps(header).encode(), payload)
    finally:
        servers.close()
    emitter.finish()


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
    parser.add_argument(
        "--no-servers", action="store_true", help="run every probe in a new process that imports afresh"
    )
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
    emitter = StreamEmitter(sys.stdout.fileno()) if args.stream else FileEmitter(args.out)
    run_plan(job, args.scratch, args.scaffold, emitter, use_servers=not args.no_servers)


if __name__ == "__main__":
    main()
