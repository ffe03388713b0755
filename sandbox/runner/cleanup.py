"""Runs in the runner, between probes, when no student process is left: it removes what a probe's code
left on the writable file systems and in System V IPC, trusting nothing it finds there (links, modes).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path


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
