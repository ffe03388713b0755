"""The restart logic every executor shares, and the local-process executor (the interface they
implement is grader/engine/executor.py).

An executor turns (plan, submission files) into one validated ProbeOutcome per probe. If the sandbox
dies in the middle (student code killed its own runner, say), the probe that was running is marked
"crashed" and the remaining probes run again in a fresh sandbox: a probe fails alone.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.engine.executor import ProgressCallback, SandboxUnavailable
from grader.engine.outputs import ProbeOutcome, read_probe_outcome
from grader.engine.probes import SandboxPlan
from sandbox.runner.protocol import WHOLE_RUN_TIMEOUT, ImportFailure, learn_failure

RUNNER = Path(__file__).resolve().parents[2] / "sandbox" / "runner" / "__main__.py"


def tar_bytes(files: Mapping[str, bytes]) -> bytes:
    """The job's files as a tar stream: what a runner reads on its stdin (Docker's and Gradescope's)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def job_files(plan: SandboxPlan, files: Mapping[str, bytes]) -> dict[str, bytes]:
    """The job the runner reads: plan.json, inputs.npz and submission/<graded files>."""
    buffer = io.BytesIO()
    np.savez(buffer, **plan.inputs)  # type: ignore[arg-type]
    job = {"plan.json": json.dumps(plan.document).encode(), "inputs.npz": buffer.getvalue()}
    job.update({f"submission/{name}": content for name, content in files.items()})
    return job


def write_job(job: Path, plan: SandboxPlan, files: Mapping[str, bytes]) -> None:
    for name, content in job_files(plan, files).items():
        (job / name).parent.mkdir(parents=True, exist_ok=True)
        (job / name).write_bytes(content)


def count_finished(out: Path) -> int:
    return sum(1 for name in os.listdir(out) if name.endswith(".json"))


@dataclass
class Attempt:
    """One run of the sandbox on (part of) a plan."""

    exit_code: int | None  # None: stopped from outside at its deadline
    outcomes: dict[int, ProbeOutcome]
    failure: ProbeOutcome | None = None  # what to record for the probe in flight when it died
    ready: bool = False  # the runner received its job and built the package: later failures are the code's


class RestartingExecutor:
    """Runs the plan, and again on what is left each time the sandbox dies part-way."""

    name = "abstract"

    def attempt(
        self, plan: SandboxPlan, files: Mapping[str, bytes], deadline: float, progress: Callable[[int], None]
    ) -> Attempt:
        """Run the sandbox once on `plan` until it exits or `deadline`."""
        raise NotImplementedError

    def run(
        self, plan: SandboxPlan, files: Mapping[str, bytes], progress: ProgressCallback | None = None
    ) -> list[ProbeOutcome]:
        total = len(plan.probe_ids)
        outcomes: dict[int, ProbeOutcome] = {}

        def report(finished_now: int) -> None:
            if progress is not None:
                progress(min(total, len(outcomes) + finished_now), total)

        current = plan
        for _ in range(total):
            pending = [p["index"] for p in current.document["probes"]]
            deadline = time.monotonic() + self.run_time_limit(current)
            attempt = self.attempt(current, files, deadline, report)
            outcomes.update({i: o for i, o in attempt.outcomes.items() if i in pending})
            left = [index for index in pending if index not in outcomes]
            if not left:
                break
            if not attempt.ready:
                # No student code had run yet: the sandbox itself failed, never the submission.
                raise SandboxUnavailable(
                    f"the sandbox failed before running any probe (exit code {attempt.exit_code})"
                )
            outcomes[left[0]] = attempt.failure or ProbeOutcome(
                status="crashed" if attempt.exit_code is not None else "timeout",
                message="the sandbox process running this probe was killed"
                if attempt.exit_code is not None
                else WHOLE_RUN_TIMEOUT,
            )
            if not left[1:]:
                break
            current = plan.subset(left[1:], *self._learnt(plan, outcomes))
        report(0)
        return [outcomes.get(i, ProbeOutcome(status="crashed", message="not run")) for i in range(total)]

    @staticmethod
    def run_time_limit(plan: SandboxPlan) -> float:
        """Every probe's own limit, plus room for starting the sandbox that grows with the work: a slow
        machine (whose probes get a larger time_scale) must not turn the sandbox's start into a timeout."""
        probes = sum(float(p["time_limit"]) for p in plan.document["probes"])
        return probes + 15.0 + 0.25 * probes

    @staticmethod
    def _learnt(
        plan: SandboxPlan, outcomes: Mapping[int, ProbeOutcome]
    ) -> tuple[dict[str, ImportFailure], list[str]]:
        """Import failures and hanging functions seen so far, so a restarted sandbox skips them too."""
        failures: dict[str, ImportFailure] = {}
        hanging: set[str] = set()
        for probe in plan.document["probes"]:
            outcome = outcomes.get(probe["index"])
            if outcome is not None:
                # A probe stopped by the whole run's deadline did not hang on its own.
                own_timeout = outcome.message != WHOLE_RUN_TIMEOUT
                learn_failure(
                    probe, outcome.status, outcome.message, failures, hanging, own_timeout=own_timeout
                )
        return failures, sorted(hanging)


def runner_environment(home: Path) -> dict[str, str]:
    """An environment built from an allowlist: nothing of the service's (database URLs, secrets) leaks."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
    }


class LocalProcessExecutor(RestartingExecutor):
    """Runs the runner as a local process. For development only: it is not a security boundary."""

    name = "process"

    def __init__(self, python: str = sys.executable, use_servers: bool = True) -> None:
        self.python = python
        self.use_servers = use_servers  # False: every probe in a new process (see sandbox/runner/snapshot.py)

    def description(self) -> dict[str, str]:
        return {"executor": self.name, "python": self.python}

    def attempt(
        self, plan: SandboxPlan, files: Mapping[str, bytes], deadline: float, progress: Callable[[int], None]
    ) -> Attempt:
        with tempfile.TemporaryDirectory(prefix="grader-job-") as tmp:
            job, out, scratch = Path(tmp) / "job", Path(tmp) / "out", Path(tmp) / "scratch"
            for folder in (job, out, scratch):
                folder.mkdir()
            write_job(job, plan, files)
            code = self.launch(job, out, scratch, deadline, lambda: progress(count_finished(out)))
            indices = [p["index"] for p in plan.document["probes"]]
            found = {index: read_probe_outcome(out, index) for index in indices}
            ready = os.path.lexists(out / "ready")
            return Attempt(code, {index: o for index, o in found.items() if o is not None}, ready=ready)

    def launch(
        self, job: Path, out: Path, scratch: Path, deadline: float, on_poll: Callable[[], None]
    ) -> int | None:
        """Run the runner on `job`; its exit code (negative: killed by that signal), None at `deadline`."""
        command = [
            self.python,
            "-I",
            str(RUNNER),
            "--job",
            str(job),
            "--out",
            str(out),
            "--scratch",
            str(scratch),
            *([] if self.use_servers else ["--no-servers"]),
        ]
        try:
            process = subprocess.Popen(
                command,
                env=runner_environment(scratch),
                cwd=scratch,  # not the service's own folder: relative writes of student code land in scratch
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            raise SandboxUnavailable(f"cannot start {self.python}: {exc}") from exc
        try:
            while process.poll() is None:
                if time.monotonic() > deadline:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                    return None
                on_poll()
                time.sleep(0.05)
            return process.returncode
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
