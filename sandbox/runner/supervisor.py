"""Runs in the runner, which is the container's PID 1: starting the probes' processes, waiting for their
results with a deadline, and ending and reaping them (and whatever they started). Everything a probe's
process sends is untrusted: read with caps, parsed strictly, cleaned to known fields.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sandbox.runner import child
from sandbox.runner.emit import Emitter
from sandbox.runner.protocol import (
    CHILD_LENGTH,
    CHILD_STATUSES,
    LOG_TAIL_BYTES,
    MAX_CHILD_HEADER_BYTES,
    MAX_RESULT_BYTES,
    PlanDocument,
    ProbeEntry,
    ResultHeader,
    sanitize,
)

if TYPE_CHECKING:  # the servers call into this module; only their type is needed here
    from sandbox.runner.probe_servers import ProbeServer, ProbeServers


# Set by the runner's --sole-user: it runs as a user of its own and is its processes' subreaper, so that
# every other process of that user is a probe's, as every other process of a container is its PID 1's.
SOLE_USER = False


def in_charge_of_strays() -> bool:
    """Whether every other process we can see of our user is a probe's, to be ended between probes."""
    return os.getpid() == 1 or SOLE_USER


def kill_group(pid: int) -> None:
    """Kill the process `pid` and its process group (it may have left the group: kill it by pid too)."""
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)


def kill_strays(grace: float = 5.0) -> None:
    """As the container's PID 1, end every other process: daemons that left the probe's process group too.

    It waits until they are all gone (reaped, as their PID 1), so that the next probe finds their process
    slots and memory free. Only in a container (or as a user of its own): elsewhere, kill(-1) would reach
    every process of the user.
    """
    if not in_charge_of_strays():
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
        if total > MAX_RESULT_BYTES:
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


def parse_child_result(data: bytes) -> tuple[ResultHeader, bytes] | None:
    """The header and payload a probe's process sent up its pipe, or None if it is not one."""
    if len(data) < CHILD_LENGTH.size:
        return None
    (length,) = CHILD_LENGTH.unpack_from(data)
    if length > MAX_CHILD_HEADER_BYTES or len(data) < CHILD_LENGTH.size + length:
        return None
    try:
        header = json.loads(data[CHILD_LENGTH.size : CHILD_LENGTH.size + length])
    except ValueError:
        return None
    if not isinstance(header, dict) or header.get("status") not in CHILD_STATUSES:
        return None
    return clean_child_header(header), data[CHILD_LENGTH.size + length :]


def clean_child_header(header: dict[str, Any]) -> ResultHeader:
    """Known fields only, as printable text: student code can write to the result pipe too."""
    invalid = header.get("invalid")
    cleaned: ResultHeader = {
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
    probe: ProbeEntry,
    inputs: dict[str, np.ndarray],
    plan: PlanDocument,
    pkg_root: Path,
    servers: ProbeServers,
    emitter: Emitter,
) -> tuple[ResultHeader, bytes]:
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
    probe: ProbeEntry,
    inputs: dict[str, np.ndarray],
    plan: PlanDocument,
    pkg_root: Path,
    servers: ProbeServers,
    server: ProbeServer | None,
    emitter: Emitter,
) -> tuple[ResultHeader, bytes] | None:
    """Run the probe in `server`, or in a new child if None; None if the server did not take it."""
    log_fd = new_log()
    read_fd, write_fd = os.pipe()
    started = time.monotonic()
    deadline = started + float(probe.get("time_limit", 5.0))
    if server is not None:
        servers.launch(server, probe["position"], write_fd, log_fd)
    forked = server.pid if server else fork_child(probe, inputs, plan, pkg_root, read_fd, write_fd, log_fd)
    if forked is None:
        message = "the code could not be started: no process slot was free"
        return {"status": "crashed", "message": message, "invalid": {}, "stdout": "", "seconds": 0.0}, b""
    pid = forked
    os.close(write_fd)
    reading = ProbeReading()
    try:
        reading.read(read_fd, pid, deadline, servers, server, emitter)
    finally:
        os.close(read_fd)
        # A server that will not serve again ends now, before the look for processes left behind.
        failed_server = None if server is None or (reading.reuse and reading.taken) else server
        end_probe_processes(pid, servers, failed_server)
    if not reading.taken:
        os.close(log_fd)
        return None
    header, payload = reading.result()
    header["stdout"] = read_log_tail(log_fd)
    os.close(log_fd)
    header["seconds"] = float(f"{time.monotonic() - started:.4f}")
    return header, payload


def fork_child(
    probe: ProbeEntry,
    inputs: dict[str, np.ndarray],
    plan: PlanDocument,
    pkg_root: Path,
    read_fd: int,
    write_fd: int,
    log_fd: int,
) -> int | None:
    """Start a child of its own for the probe; its pid, or None (and the descriptors closed) if no
    process could be started."""
    try:
        pid = os.fork()
    except OSError:
        for fd in (log_fd, read_fd, write_fd):
            os.close(fd)
        return None
    if pid == 0:
        os.close(read_fd)
        child.child_main(probe, inputs, plan, pkg_root, write_fd, log_fd)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.setpgid(pid, pid)  # the child does it too; whichever runs first wins the race
    return pid


class ProbeReading:
    """What one probe's process sent, and how it ended."""

    def __init__(self) -> None:
        self.parsed: tuple[ResultHeader, bytes] | None = None
        self.failure: str | None = None  # timeout or output_limit while reading
        self.taken = True  # whether the server took the probe (a child of our own always does)
        self.reuse = False  # whether the server serves again
        self.status: int | None = None  # the wait status, when no complete result came

    def read(
        self,
        read_fd: int,
        pid: int,
        deadline: float,
        servers: ProbeServers,
        server: ProbeServer | None,
        emitter: Emitter,
    ) -> None:
        data, self.failure = read_until_eof(read_fd, deadline, emitter)
        self.parsed = None if self.failure else parse_child_result(data)
        self.reuse = self.parsed is not None and self.parsed[0].pop("reuse", False) is True
        self.taken = server is None or servers.took(server)
        # A complete result needs no exit status; without one, the status says how the process ended.
        if not (self.failure or self.parsed or not self.taken):
            self.status = wait_exit(pid, deadline, emitter)

    def result(self) -> tuple[ResultHeader, bytes]:
        if self.failure == "timeout":
            return {"status": "timeout", "message": crash_status(None)[1], "invalid": {}}, b""
        if self.failure:
            return {
                "status": self.failure,
                "message": "the code produced more output than allowed",
                "invalid": {},
            }, b""
        if self.parsed is None:
            code, message = crash_status(self.status)
            return {"status": code, "message": message, "invalid": {}}, b""
        return self.parsed


def run_in_child(action: Callable[[], object], time_limit: float) -> None:
    """Run `action` in a child process of its own group, killed if it outlasts `time_limit`."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            action()
        finally:
            os._exit(0)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.setpgid(pid, pid)
    if wait_exit(pid, time.monotonic() + time_limit) is None:
        kill_group(pid)
        os.waitpid(pid, 0)


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
    if in_charge_of_strays() and other_processes(servers.pids()):
        servers.forget()
        kill_strays()


def other_processes(expected: set[int]) -> bool:
    """Whether a process other than us and `expected` exists (in a container, /proc shows only its own)."""
    known = expected | {1, os.getpid()}
    others = (int(name) for name in os.listdir("/proc") if name.isdigit() and int(name) not in known)
    if os.getpid() == 1:
        return any(True for _ in others)
    return any(process_uid(pid) == os.getuid() for pid in others)  # --sole-user: other users' are not ours


def process_uid(pid: int) -> int | None:
    """The real uid of a process (from its status, which a non-dumpable process cannot hide), or None."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


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
