"""Runs in the runner: receiving the job and sending the results out, as files or as frames on the
container's stdout, which no student process holds. It trusts the job (it comes from the grader).
"""

from __future__ import annotations

import collections
import contextlib
import os
import tarfile
from pathlib import Path
from typing import BinaryIO

from sandbox.runner.protocol import READY_INDEX, pack_frame


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


def write_new(path: Path, data: bytes) -> None:
    """Replace `path` with `data`, never following a link planted there by earlier student code."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


class FileEmitter:
    """Results as files out/p<index>.npz and .json (the JSON last: its presence means "finished")."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def emit(self, index: int, header: bytes, payload: bytes) -> None:
        if index == READY_INDEX:
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
        self.pending.append(memoryview(pack_frame(index, header, payload)))
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
