"""The Docker sandbox: one fresh, locked-down container per attempt, created, used once and removed.

The job (plan, inputs, student files) goes in on stdin as a tar; the runner then closes stdin and writes
its results as frames on stdout, which only it holds (it is PID 1 and not dumpable, so student processes
can neither signal it nor open its file descriptors). The trusted side reads stdout with a byte cap and
validates the frames only after the container has exited; nothing is read from the container's disk.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.engine.outputs import ProbeOutcome, parse_frames
from grader.engine.probes import SandboxPlan
from grader.sandbox_client.executor import (
    Attempt,
    RestartingExecutor,
    job_files,
    runner_environment,
    tar_bytes,
)
from grader.sandbox_client.pool import ContainerPool, StartedContainer, start_container
from sandbox.runner.protocol import READY_INDEX, scan_frames

CONTAINER_LABEL = "org.opencourse.grader.sandbox"
MULTIPLEX_HEADER = 8  # Docker's attach stream: stream type, 3 zero bytes, 4-byte big-endian length


@dataclass(frozen=True)
class ContainerLimits:
    """Every limit of a sandbox container (Settings.container_limits() builds them)."""

    memory_bytes: int
    cpus: float
    pids: int
    scratch_bytes: int
    tmp_bytes: int
    open_files: int
    file_bytes: int
    output_bytes: int  # all results of one attempt together, on stdout
    runtime: str | None  # "runsc" for gVisor, when the engine has it


def sandbox_environment() -> dict[str, str]:
    """The runner's allowlisted environment, with the container's home."""
    return runner_environment(Path("/tmp"))


PROCESS_TOKEN = secrets.token_hex(4)  # tells this process from an earlier one that had the same pid


def default_owner() -> str:
    """Who started a container: lets a service (or a test) find and remove exactly its own containers."""
    return f"{socket.gethostname()}:{os.getpid()}:{PROCESS_TOKEN}"


def remove_stale_containers(client: Any) -> int:
    """Remove sandbox containers left by processes of this host that died without cleaning up (SIGKILL).

    Containers of living processes, and of other hosts sharing the engine, are left alone.
    """
    host = socket.gethostname()
    removed = 0
    for container in client.containers.list(all=True, filters={"label": CONTAINER_LABEL}):
        owner_host, pid, token = [*container.labels.get(CONTAINER_LABEL, "").split(":"), "", ""][:3]
        if owner_host != host or not pid.isdigit():
            continue
        # A restarted worker in a container often gets its predecessor's pid: the token tells them apart.
        earlier_self = int(pid) == os.getpid() and token != PROCESS_TOKEN
        if process_alive(int(pid)) and not earlier_self:
            continue
        with contextlib.suppress(Exception):
            container.remove(force=True)
            removed += 1
    return removed


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def container_options(
    image: str, limits: ContainerLimits, owner: str | None = None, use_servers: bool = True
) -> dict[str, Any]:
    """Keyword arguments of `client.containers.create` for one sandbox container (`use_servers`: the
    runner's probe servers; without them every probe has a new process, which is slower)."""
    tmpfs_flags = "mode=1777,nosuid,nodev,noexec"
    options: dict[str, Any] = {
        "image": image,
        "command": [
            "python3",
            "-I",
            "/opt/grader/sandbox/runner/__main__.py",
            "--stdin",
            "--stream",
            "--scratch",
            "/scratch",
            *([] if use_servers else ["--no-servers"]),
        ],
        "user": "65534:65534",
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {
            "/scratch": f"size={limits.scratch_bytes},{tmpfs_flags}",
            "/tmp": f"size={limits.tmp_bytes},{tmpfs_flags}",
        },
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": limits.pids,
        # System V IPC objects outlive the processes that make them (and their memory is the
        # container's): in the container's own IPC namespace, allow none at all.
        "ipc_mode": "private",
        "sysctls": {
            "kernel.shmmni": "0",
            "kernel.msgmni": "0",
            "kernel.sem": "0 0 0 0",
            "fs.mqueue.queues_max": "0",  # POSIX message queues outlive their makers too
        },
        "mem_limit": limits.memory_bytes,
        "memswap_limit": limits.memory_bytes,  # equal: no swap
        "nano_cpus": int(limits.cpus * 1e9),
        "ulimits": [
            {"Name": "nofile", "Soft": limits.open_files, "Hard": limits.open_files},
            {"Name": "fsize", "Soft": limits.file_bytes, "Hard": limits.file_bytes},
            {"Name": "core", "Soft": 0, "Hard": 0},
        ],
        "environment": sandbox_environment(),
        "stdin_open": True,  # only to receive the job: the runner closes it before any student code runs
        "tty": False,
        "working_dir": "/tmp",
        "labels": {CONTAINER_LABEL: owner or default_owner()},
        "log_config": {"type": "none"},  # results are read from the attach stream, never stored by Docker
    }
    if limits.runtime:
        options["runtime"] = limits.runtime
    return options


class StdoutReader:
    """Demultiplexes Docker's attach stream into the container's stdout, up to a byte cap."""

    def __init__(self, cap: int, on_frames: Callable[[int], None]) -> None:
        self.cap = cap
        self.on_frames = on_frames
        self.pending = bytearray()  # multiplexed bytes not yet demultiplexed
        self.stdout = bytearray()
        self.frames = 0
        self._scan = 0  # where the next result frame starts in stdout

    def feed(self, chunk: bytes) -> bool:
        """Take more bytes; False once stdout went over the cap."""
        self.pending += chunk
        while len(self.pending) >= MULTIPLEX_HEADER:
            length = int.from_bytes(self.pending[4:8], "big")
            if len(self.pending) < MULTIPLEX_HEADER + length:
                break
            if self.pending[0] == 1:
                self.stdout += self.pending[MULTIPLEX_HEADER : MULTIPLEX_HEADER + length]
            del self.pending[: MULTIPLEX_HEADER + length]
        self._count_frames()
        return len(self.stdout) <= self.cap

    def _count_frames(self) -> None:
        before = self.frames
        for index, _, _, end in scan_frames(self.stdout, self._scan):
            self._scan = end
            self.frames += index != READY_INDEX
        if self.frames != before:
            self.on_frames(self.frames)


class DockerExecutor(RestartingExecutor):
    """A fresh container per attempt (started now, or taken from a pool of pre-started ones); the
    container serves that attempt only and is removed in a `finally`, whatever happens."""

    name = "docker"

    def __init__(
        self,
        client: Any,
        image: str,
        limits: ContainerLimits,
        pool: ContainerPool | None = None,
        owner: str | None = None,
        use_servers: bool = True,
    ) -> None:
        self.client = client
        self.image = image
        self.limits = limits
        self.options = container_options(image, self.limits, owner, use_servers)
        self.pool = pool  # pre-started containers made with the same options, or None: start one per attempt

    def description(self) -> dict[str, str]:
        return {"executor": self.name, "image": self.image, "runtime": self.limits.runtime or "default"}

    def attempt(
        self, plan: SandboxPlan, files: Mapping[str, bytes], deadline: float, progress: Callable[[int], None]
    ) -> Attempt:
        job = tar_bytes(job_files(plan, files))
        known = {probe["index"] for probe in plan.document["probes"]}
        started = self.pool.take() if self.pool else start_container(self.client, self.options)
        try:
            reader, exit_code, failure = self._run(started, job, deadline, progress, len(known))
        finally:
            # Not a daemon: the interpreter waits for it at exit, so the container goes even then.
            removal = threading.Thread(target=self._retire, args=(started,), name="sandbox-removal")
            try:
                removal.start()
            except RuntimeError:  # no thread to be had: remove it here and now
                self._retire(started)
        # The stream has ended and is all in memory: check its frames while the container goes, but
        # return (and let anything be judged) only once it is gone.
        outcomes, ready = parse_frames(reader.stdout, known)
        removal.join()
        return Attempt(exit_code, outcomes, failure, ready)

    def _retire(self, started: StartedContainer) -> None:
        started.discard()
        if self.pool:
            self.pool.replenish(started)

    def _run(
        self,
        started: StartedContainer,
        job: bytes,
        deadline: float,
        progress: Callable[[int], None],
        expected_frames: int,
    ) -> tuple[StdoutReader, int | None, ProbeOutcome | None]:
        reader = StdoutReader(self.limits.output_bytes, progress)
        try:
            started.raw.sendall(job)
            started.raw.shutdown(socket.SHUT_WR)  # EOF on the runner's stdin
            finished = self._read(started.raw, reader, deadline)
        finally:
            started.close_stream()
        if finished and reader.frames >= expected_frames:
            # Every probe has its result, so how the runner ended changes nothing: do not wait for it
            # (the container is killed and removed before the results are read all the same).
            return reader, 0, None
        if finished is False:
            started.kill()
            return (
                reader,
                None,
                ProbeOutcome(status="output_limit", message="the sandbox wrote more output than allowed"),
            )
        if finished is None:
            started.kill()
            return reader, None, None
        exit_code = self._exit_code(started.container, deadline)
        if exit_code is not None and self._oom_killed(started.container):
            out_of_memory = ProbeOutcome(status="memory_limit", message="the sandbox ran out of memory")
            return reader, exit_code, out_of_memory
        return reader, exit_code, None

    @staticmethod
    def _read(raw: socket.socket, reader: StdoutReader, deadline: float) -> bool | None:
        """True at the end of the stream, False over the output cap, None at the deadline."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([raw], [], [], min(remaining, 1.0))
            if not ready:
                continue
            chunk = raw.recv(1 << 16)
            if not chunk:
                return True
            if not reader.feed(chunk):
                return False

    @staticmethod
    def _exit_code(container: Any, deadline: float) -> int | None:
        try:
            status = container.wait(timeout=max(1.0, deadline - time.monotonic()))
        except Exception:  # a timeout surfaces as one of several requests exceptions
            with contextlib.suppress(Exception):
                container.kill()
            return None
        return int(status.get("StatusCode", -1))

    @staticmethod
    def _oom_killed(container: Any) -> bool:
        container.reload()
        return bool(container.attrs.get("State", {}).get("OOMKilled"))
