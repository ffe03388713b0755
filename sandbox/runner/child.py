"""Runs in a probe's process, forked from the runner, where the student's code runs: it trusts nothing
after enter_child, and its only way out is the result pipe, which the runner reads as untrusted.

A probe's process is a child of its own (child_main: one probe) or a probe server (server_main: the
probes of one set of modules, for as long as each leaves the process as the import did; snapshot.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import signal
import socket
import struct
import sys
import traceback
import types
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np

from sandbox import recipes
from sandbox.runner import package, snapshot
from sandbox.runner.protocol import CHILD_LENGTH, PlanDocument, ProbeEntry, ResultHeader, sanitize

ProbeAt = Callable[[int], tuple[ProbeEntry, dict[str, np.ndarray]]]
SERVER_ACCEPTED = b"A"  # a server's first word on a probe handed to it: it has taken it
POSITION = struct.Struct(">I")  # what the runner sends a server: the position of its next probe in the plan


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


def enter_child(plan: PlanDocument, pkg_root: Path, keep: Collection[int]) -> None:
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
    package.install_aliases(plan)
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


def silence_output() -> None:
    """Point stdout and stderr at /dev/null, letting go of the last probe's output file."""
    flush_output()
    redirect_output(os.open(os.devnull, os.O_WRONLY))


def probe_result(
    probe: ProbeEntry,
    inputs: dict[str, np.ndarray],
    pkg_root: Path,
    modules: Callable[[], types.SimpleNamespace],
) -> tuple[ResultHeader, bytes]:
    """Run the probe's recipe on the student's modules: its header and npz payload, whatever happens."""
    header: ResultHeader = {"status": "ok", "message": "", "invalid": {}}
    payload = b""
    try:
        result = recipes.RECIPES[probe["recipe"]](modules(), inputs, probe.get("options", {}))
        buffer = io.BytesIO()
        np.savez(buffer, **result.arrays)  # type: ignore[arg-type]
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


def write_result(write_fd: int, header: ResultHeader, payload: bytes) -> None:
    """Send a probe's result up its pipe (after what it printed, so that no output is lost)."""
    flush_output()
    encoded = json.dumps(header).encode()
    os.write(write_fd, CHILD_LENGTH.pack(len(encoded)) + encoded)
    view = memoryview(payload)
    while view:
        view = view[os.write(write_fd, view) :]


def send_result(write_fd: int, header: ResultHeader, payload: bytes) -> NoReturn:
    """Send the result and end the process."""
    try:
        write_result(write_fd, header, payload)
    finally:
        os._exit(0)


def child_main(
    probe: ProbeEntry,
    inputs: dict[str, np.ndarray],
    plan: PlanDocument,
    pkg_root: Path,
    write_fd: int,
    log_fd: int,
) -> NoReturn:
    """A child of its own: set up, import, call, send the outputs up the pipe."""
    try:
        enter_child(plan, pkg_root, keep=(write_fd, log_fd))
        redirect_output(log_fd)
        package.forbid_imports(plan, probe.get("forbid", []))
    except BaseException as exc:
        header: ResultHeader = {"status": "error", "message": short_traceback(exc, pkg_root), "invalid": {}}
        send_result(write_fd, header, b"")
    header, payload = probe_result(
        probe, inputs, pkg_root, lambda: package.import_modules(plan["package"], probe["modules"], pkg_root)
    )
    send_result(write_fd, header, payload)


class ServedProbes:
    """A probe server's state: the modules it imports during its first probe, and the snapshot of the
    process right after that import, which every later probe must leave unchanged."""

    def __init__(self, plan: PlanDocument, pkg_root: Path, modules: list[str]) -> None:
        self.plan, self.pkg_root, self.modules = plan, pkg_root, modules
        self.imported: types.SimpleNamespace | None = None
        self.snapshot: snapshot.Snapshot | None = None

    def run(self, probe: ProbeEntry, inputs: dict[str, np.ndarray], write_fd: int, output_copy: int) -> bool:
        """Run one probe and send its result; whether the server may take another."""
        if self.imported is None:

            def import_for_first_probe() -> types.SimpleNamespace:
                self.imported = package.import_modules(self.plan["package"], self.modules, self.pkg_root)
                flush_output()
                self.snapshot = snapshot.take_snapshot(
                    self.plan["package"], (write_fd, output_copy), output_copy
                )
                return self.imported

            header, payload = probe_result(probe, inputs, self.pkg_root, import_for_first_probe)
        else:
            imported = self.imported
            if self.snapshot is not None:
                if self.snapshot.printed:
                    os.write(output_copy, self.snapshot.printed)  # the import's output is every probe's
                np.random.set_state(self.snapshot.random_state)  # as a fresh process would find it
            header, payload = probe_result(probe, inputs, self.pkg_root, lambda: imported)
        # Decided before the result is sent, and sent with it, so that the runner can end a server that
        # will not serve again before it looks for processes a probe left behind.
        reuse = (
            header["status"] == "ok"
            and self.snapshot is not None
            and self.snapshot.unchanged((write_fd, output_copy))
        )
        header["reuse"] = reuse
        write_result(write_fd, header, payload)
        return reuse


def server_main(
    control: socket.socket,
    modules: Sequence[str],
    forbidden: Sequence[str],
    plan: PlanDocument,
    pkg_root: Path,
    probe_at: ProbeAt,
) -> NoReturn:
    """A probe server: take probes handed over `control` until one changes the process or fails."""
    served = ServedProbes(plan, pkg_root, list(modules))
    try:
        enter_child(plan, pkg_root, keep=(control.fileno(),))
        package.forbid_imports(plan, forbidden)
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
            reuse = served.run(probe, inputs, write_fd, output_copy)
            os.close(write_fd)
            os.close(output_copy)
            silence_output()
            if not reuse:
                os._exit(0)
        except BaseException:
            os._exit(0)
