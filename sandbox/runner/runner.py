"""Runs in the runner (in the Docker sandbox, the container's PID 1): main and the plan loop. It trusts
the job it receives and nothing that student code leaves behind.

The sandbox's evaluator: run a plan's probes on the student's code and write raw outputs, nothing more.
It never sees the reference, expected values, thresholds or points; every judgement is made outside,
after it has finished. Each probe runs in a process of its own with its own limits (supervisor.py,
child.py), so a probe that hangs or crashes fails alone; a probe server may take several probes of the
same modules while each leaves it as the import did (snapshot.py, probe_servers.py). Standard library
and numpy only.

usage: python -I sandbox/runner/__main__.py (--job DIR | --stdin) (--out DIR | --stream) --scratch DIR
                                            [--scaffold DIR] [--no-servers]
  the job is plan.json, inputs.npz and submission/<graded files>, as a folder or a tar on stdin;
  results go to OUT/p<index>.{json,npz}, or as frames on stdout (the Docker sandbox).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import io
import json
import signal
import sys
from pathlib import Path
from typing import cast

import numpy as np

from sandbox.runner import package, supervisor
from sandbox.runner.cleanup import remove_left_behind, take_baseline
from sandbox.runner.emit import Emitter, FileEmitter, StreamEmitter, receive_job
from sandbox.runner.probe_servers import ProbeServers
from sandbox.runner.protocol import (
    READY_INDEX,
    ImportFailure,
    PlanDocument,
    ProbeEntry,
    learn_failure,
    skip_reason,
)

SCAFFOLD = Path(__file__).resolve().parents[1] / "scaffold"


def make_non_dumpable() -> None:
    """Forbid same-user processes (the student's) to read our memory or open /proc/<our pid>/fd."""
    import ctypes

    pr_set_dumpable = 4
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_dumpable, 0, 0, 0, 0)


def warm_up() -> None:
    """Do once here what every child would otherwise do again: numpy's lazy imports, and a GC-stable heap."""
    np.savez(io.BytesIO(), warm=np.zeros(1))  # imports zipfile and numpy's writers
    np.random.seed(0)  # numpy 2 imports numpy.random lazily, at ~13 ms a child
    importlib.util.find_spec("json")
    gc.freeze()  # children must not copy our heap page by page when their garbage collector walks it


def load_job(job: Path) -> tuple[PlanDocument, dict[str, np.ndarray]]:
    plan = cast(PlanDocument, json.loads((job / "plan.json").read_text()))
    with np.load(job / "inputs.npz", allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    for position, probe in enumerate(plan["probes"]):
        probe["position"] = position
    return plan, arrays


def run_plan(job: Path, scratch: Path, scaffold: Path, emitter: Emitter, use_servers: bool = True) -> None:
    """Build the package, then run or skip each probe in plan order and emit its result."""
    plan, arrays = load_job(job)
    pkg_root = scratch / "pkg"
    package.build_package(job / "submission", scaffold, pkg_root, plan["package"])
    supervisor.run_in_child(lambda: package.compile_package(pkg_root), time_limit=10.0)
    baseline = take_baseline(scratch)
    # From here on, whatever fails is a probe's doing, not the sandbox's.
    emitter.emit(READY_INDEX, b"", b"")
    import_failures: dict[str, ImportFailure] = dict(plan.get("import_failures", {}))
    hanging = set(plan.get("hanging", []))

    def probe_at(position: int) -> tuple[ProbeEntry, dict[str, np.ndarray]]:
        probe = plan["probes"][position]
        return probe, {name: arrays[key] for name, key in probe.get("inputs", {}).items()}

    gc.freeze()  # again: the plan and inputs were loaded after warm_up
    servers = ProbeServers(plan, pkg_root, probe_at, enabled=use_servers)
    try:
        for probe in plan["probes"]:
            header = skip_reason(probe, import_failures, hanging)
            payload = b""
            if header is None:
                inputs = probe_at(probe["position"])[1]
                header, payload = supervisor.run_probe(probe, inputs, plan, pkg_root, servers, emitter)
                if remove_left_behind(baseline):
                    servers.close()  # their import may have made those files, and would not again
            servers.done(probe)
            own_timeout = not header.get("skipped")
            learn_failure(
                probe, header["status"], header["message"], import_failures, hanging, own_timeout=own_timeout
            )
            emitter.emit(probe["index"], json.dumps(header).encode(), payload)
    finally:
        servers.close()
    emitter.finish()


def main() -> None:
    parser = argparse.ArgumentParser(prog="runner", description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--job", type=Path, help="the job folder")
    source.add_argument("--stdin", action="store_true", help="receive the job as a tar on stdin")
    sink = parser.add_mutually_exclusive_group(required=True)
    sink.add_argument("--out", type=Path, help="write results as files into this folder")
    sink.add_argument("--stream", action="store_true", help="write results as frames on stdout")
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--scaffold", type=Path, default=SCAFFOLD)
    parser.add_argument(
        "--no-servers", action="store_true", help="run every probe in a new process that imports afresh"
    )
    parser.add_argument(
        "--sole-user",
        action="store_true",
        help="we run as a user of our own, as our processes' subreaper: end its other processes between "
        "probes, as a container's PID 1 does",
    )
    args = parser.parse_args()
    supervisor.SOLE_USER = args.sole_user
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
