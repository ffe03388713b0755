"""The sandbox where there is no Docker but the grader is root (Gradescope's container): the runner as a
user of its own, which owns nothing of the grader's.

The runner gets the job as a tar on stdin and streams its results on stdout, as in the Docker sandbox
(not dumpable, so the student's processes cannot open its descriptors); the trusted side validates the
frames after it has exited. It starts, as that user, with no supplementary groups, `no_new_privs`, and
limits on the user's processes, open files, file size and core dumps, as the subreaper of everything it
starts; it ends every other process of the user between probes (`--sole-user`), as a container's PID 1
does. After each attempt every process of the user is killed and its files in the shared temporary
folders are removed, as a container's removal would. Standard library and numpy only: the Gradescope
bundle uses it without the service's packages.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from grader.engine.executor import SandboxUnavailable
from grader.engine.outputs import ProbeOutcome, parse_frames
from grader.engine.probes import SandboxPlan
from grader.sandbox_client.executor import (
    RUNNER,
    Attempt,
    RestartingExecutor,
    job_files,
    runner_environment,
    tar_bytes,
)
from sandbox.runner.cleanup import remove_tree
from sandbox.runner.protocol import READY_INDEX, scan_frames

# Folders every user may write to: what the sandbox user leaves there is removed after each attempt.
SHARED_FOLDERS = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), Path("/run/lock"))
PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 36, 38
# Runs as the sandbox user, between the fork and the runner: limits, no_new_privs and the subreaper role
# (which execve keeps), then the runner itself. argv: nproc nofile fsize python runner-arguments...
LAUNCHER = f"""
import ctypes, os, resource, sys
nproc, nofile, fsize = (int(value) for value in sys.argv[1:4])
for which, value in ((resource.RLIMIT_NPROC, nproc), (resource.RLIMIT_NOFILE, nofile),
                     (resource.RLIMIT_FSIZE, fsize), (resource.RLIMIT_CORE, 0)):
    resource.setrlimit(which, (value, value))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl({PR_SET_NO_NEW_PRIVS}, 1, 0, 0, 0) or libc.prctl({PR_SET_CHILD_SUBREAPER}, 1, 0, 0, 0):
    raise SystemExit("prctl: " + os.strerror(ctypes.get_errno()))
os.execv(sys.argv[4], sys.argv[4:])
"""
KILL_ALL = "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept ProcessLookupError:\n    pass\n"


@dataclass(frozen=True)
class SandboxUser:
    """The user student code runs as: it must own nothing and be used by nothing else."""

    uid: int
    gid: int


@dataclass(frozen=True)
class UserLimits:
    """Limits of the sandbox user's processes (a container's, where there is no container)."""

    processes: int  # every process and thread of the user together (RLIMIT_NPROC)
    open_files: int  # of each process
    file_bytes: int  # the largest file any process writes
    output_bytes: int  # all results of one attempt together, on stdout


class UnprivilegedExecutor(RestartingExecutor):
    """One runner process per attempt, as `user`, in a scratch folder of its own; needs root."""

    name = "unprivileged"

    def __init__(
        self,
        user: SandboxUser,
        limits: UserLimits,
        *,
        python: str = sys.executable,
        runner: Path = RUNNER,
        work_dir: Path | None = None,
        use_servers: bool = True,
    ) -> None:
        if os.geteuid() != 0:
            raise SandboxUnavailable("running student code as another user needs root")
        if user.uid == 0 or user.gid == 0:
            raise SandboxUnavailable("the sandbox user must not be root")
        self.user = user
        self.limits = limits
        self.python = python
        self.runner = runner
        self.work_dir = work_dir  # where the attempts' scratch folders go (default: the system's temp)
        self.use_servers = use_servers

    def description(self) -> dict[str, str]:
        return {"executor": self.name, "python": self.python, "uid": str(self.user.uid)}

    def attempt(
        self, plan: SandboxPlan, files: Mapping[str, bytes], deadline: float, progress: Callable[[int], None]
    ) -> Attempt:
        job = tar_bytes(job_files(plan, files))
        known = {probe["index"] for probe in plan.document["probes"]}
        with self._scratch() as scratch:
            end_user_processes(self.user)  # nothing of an earlier attempt may see this one
            stdout, exit_code, failure = self._run(job, scratch, deadline, progress)
        outcomes, ready = parse_frames(stdout, known)
        return Attempt(exit_code, outcomes, failure, ready)

    def close(self) -> None:
        """Make sure nothing of the user is left (each attempt already ended its own)."""
        self.clean_up()

    def clean_up(self) -> None:
        end_user_processes(self.user)
        remove_user_files(self.user.uid)

    @contextlib.contextmanager
    def _scratch(self) -> Iterator[Path]:
        """A fresh folder the user owns, inside one of root's that it can only pass through."""
        parent = Path(tempfile.mkdtemp(prefix="grader-attempt-", dir=self.work_dir))
        try:
            os.chmod(parent, 0o711)
            scratch = parent / "scratch"
            scratch.mkdir(mode=0o700)
            os.chown(scratch, self.user.uid, self.user.gid)
            yield scratch
        finally:
            self.clean_up()  # no process of the user is left to race the removal
            shutil.rmtree(parent, ignore_errors=True)

    def _command(self, scratch: Path) -> list[str]:
        limits = self.limits
        return [
            self.python,
            "-I",
            "-c",
            LAUNCHER,
            str(limits.processes),
            str(limits.open_files),
            str(limits.file_bytes),
            self.python,
            "-I",
            str(self.runner),
            "--stdin",
            "--stream",
            "--scratch",
            str(scratch),
            "--sole-user",
            *([] if self.use_servers else ["--no-servers"]),
        ]

    def _run(
        self, job: bytes, scratch: Path, deadline: float, progress: Callable[[int], None]
    ) -> tuple[bytearray, int | None, ProbeOutcome | None]:
        """The runner's stdout, its exit code (None: stopped at `deadline`) and what to record for the
        probe in flight if it went over the output cap."""
        try:
            process = subprocess.Popen(
                self._command(scratch),
                user=self.user.uid,
                group=self.user.gid,
                extra_groups=[],
                env=runner_environment(scratch),
                cwd=scratch,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise SandboxUnavailable(f"cannot start the runner as uid {self.user.uid}: {exc}") from exc
        assert process.stdin is not None and process.stdout is not None
        stdout = bytearray()
        try:
            with contextlib.suppress(BrokenPipeError):  # a runner that died at once: its exit code says so
                process.stdin.write(job)
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
            finished = self._read(process.stdout.fileno(), stdout, deadline, progress)
            if finished is None:
                return stdout, None, None
            if finished is False:
                failure = ProbeOutcome(
                    status="output_limit", message="the sandbox wrote more output than allowed"
                )
                return stdout, None, failure
            try:
                return stdout, process.wait(timeout=max(1.0, deadline - time.monotonic())), None
            except subprocess.TimeoutExpired:
                return stdout, None, None
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.kill()
            process.wait()
            process.stdout.close()

    def _read(
        self, fd: int, stdout: bytearray, deadline: float, progress: Callable[[int], None]
    ) -> bool | None:
        """True at the end of stdout, False over the output cap, None at the deadline."""
        frames, scan = 0, 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], min(remaining, 1.0))
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return True
            stdout += chunk
            if len(stdout) > self.limits.output_bytes:
                return False
            before = frames
            for index, _, _, end in scan_frames(stdout, scan):
                scan = end
                frames += index != READY_INDEX
            if frames != before:
                progress(frames)


def user_processes(uid: int) -> list[int]:
    """The living processes whose real uid is `uid` (zombies are gone but for their pid)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            continue  # it ended meanwhile
        if fields.get("State", "").split()[:1] != ["Z"] and fields.get("Uid", "").split()[:1] == [str(uid)]:
            found.append(int(name))
    return found


def end_user_processes(user: SandboxUser, grace: float = 10.0) -> None:
    """Kill every process of `user`: kill(-1) from a process of that user reaches exactly them, all at
    once (a process forking as fast as it can cannot outrun it); then reap those handed to us."""
    deadline = time.monotonic() + grace
    while user_processes(user.uid):
        if time.monotonic() > deadline:
            raise SandboxUnavailable(f"processes of uid {user.uid} survive SIGKILL")
        subprocess.run(
            [sys.executable, "-I", "-S", "-c", KILL_ALL],
            user=user.uid,
            group=user.gid,
            extra_groups=[],
            env={},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            timeout=grace,
        )
        reap_orphans()
    reap_orphans()


def reap_orphans() -> None:
    """Collect the exit of orphans handed to us (we are a subreaper; a container's init may not reap)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def remove_user_files(uid: int, folders: tuple[Path, ...] = SHARED_FOLDERS) -> None:
    """Remove what `uid` left in the shared temporary folders; call it when none of its processes is left
    (`remove_tree` never follows links)."""
    for folder in folders:
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_uid == uid:
                        remove_tree(entry.path)
