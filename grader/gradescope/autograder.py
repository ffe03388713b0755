"""Runs in Gradescope's container, as root, for each submission (the bundle's run_autograder): grades
/autograder/submission and writes /autograder/results/results.json.

Before any student code runs it closes everything under /autograder to other users (the autograder's
source, the submission's metadata with earlier results) but the results folder, which becomes root's
and read-only to others; the student's code then runs as the sandbox user (UnprivilegedExecutor), and
the results are written by this process, atomically, after every process of that user is gone. A
sandbox that cannot run writes no results.json at all (Gradescope reports the autograder failed, and
nothing is awarded); an upload that cannot be graded gets 0 and says why.

Standard library, numpy and the grading core only (install.py puts them on the path): no pydantic,
FastAPI or Docker.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import json
import os
import secrets
import stat
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grader.assignments import get_assignment
from grader.engine.executor import SandboxUnavailable
from grader.engine.grading import GradingLimits, grade_submission
from grader.gradescope.results import check_summaries, gradescope_results
from grader.intake.uploads import (
    IntakeLimits,
    Submission,
    TooLargeUpload,
    UnusableSubmission,
    load_submission,
)
from grader.sandbox_client.unprivileged import SandboxUser, UnprivilegedExecutor, UserLimits

AUTOGRADER = Path("/autograder")
CONFIG = Path(__file__).resolve().parents[2] / "config.json"  # the installed trusted/config.json
PR_SET_CHILD_SUBREAPER = 36


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run_autograder", description=__doc__.split("\n\n")[0])
    parser.add_argument("--submission", type=Path, default=AUTOGRADER / "submission")
    parser.add_argument("--results", type=Path, default=AUTOGRADER / "results" / "results.json")
    parser.add_argument("--autograder-root", type=Path, default=AUTOGRADER, help="closed to other users")
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--seed", type=int, help="seed of the hidden inputs (random when omitted)")
    args = parser.parse_args(argv)
    config: dict[str, Any] = json.loads(args.config.read_text())
    become_subreaper()  # the sandbox's orphans come to us, to be reaped: Gradescope's init may not
    lock_down(args.autograder_root, args.results.parent)
    args.results.unlink(missing_ok=True)  # a failure below must leave no results.json at all
    started = time.monotonic()
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    try:
        submission = read_submission(args.submission, IntakeLimits(**config["intake_limits"]))
    except UnusableSubmission as exc:
        write_results(args.results, unusable_results(str(exc)))
        print(f"cannot grade the submission: {exc}")
        return 0
    catalog = dataclasses.replace(get_assignment(config["assignment"]), cascading=bool(config["cascade"]))
    executor = UnprivilegedExecutor(
        SandboxUser(uid=int(config["uid"]), gid=int(config["gid"])),
        UserLimits(**config["user_limits"]),
        python=str(config["python"]),
        runner=Path(config["runner"]),
    )
    try:
        report = grade_submission(
            submission,
            catalog,
            seed=seed,
            executor=executor,
            limits=GradingLimits(**config["grading_limits"]),
        )
    except SandboxUnavailable as exc:
        print(f"the sandbox could not run: {exc}\nno results.json was written, so nothing is awarded")
        return 1
    finally:
        executor.close()
    document = report.to_dict()
    if submission.missing:
        document["notes"].append(f"not submitted: {', '.join(submission.missing)}")
    results = gradescope_results(
        document,
        summaries=check_summaries(catalog.name),
        execution_time=time.monotonic() - started,
        shown_before_due_date=True,
    )
    results["stdout_visibility"] = "hidden"  # below: the seed, which would reveal the hidden inputs
    write_results(args.results, results)
    print(
        f"{catalog.name}: {report.score:g} / {report.max_score:g}, seed {seed}, grader "
        f"{config.get('grader_version', '?')}, {time.monotonic() - started:.1f} s"
    )
    return 0


def become_subreaper() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def lock_down(root: Path, results: Path) -> None:
    """Close every entry of `root` to other users but `results`, which becomes root's, 0755."""
    if root.is_dir() and not root.is_symlink():
        os.chown(root, 0, 0)
        os.chmod(root, 0o755)
        for entry in root.iterdir():
            mode = entry.lstat().st_mode
            if entry == results or stat.S_ISLNK(mode):
                continue
            os.chown(entry, 0, 0)
            os.chmod(entry, stat.S_IMODE(mode) & 0o700)
            if entry.name == "source" and stat.S_ISDIR(mode):
                close_tree(entry)
    if results.is_symlink():
        results.unlink()
    results.mkdir(parents=True, exist_ok=True)
    os.chown(results, 0, 0)
    os.chmod(results, 0o755)


def close_tree(folder: Path) -> None:
    """Everything below `folder` root's and closed to other users (links are left as they are)."""
    for parent, folders, files in os.walk(folder):
        for name in folders + files:
            path = os.path.join(parent, name)
            mode = os.lstat(path).st_mode
            if not stat.S_ISLNK(mode):
                os.chown(path, 0, 0)
                os.chmod(path, stat.S_IMODE(mode) & 0o700)


def read_submission(folder: Path, limits: IntakeLimits) -> Submission:
    """The graded files of the upload; a zip uploaded as it is (not unpacked by Gradescope) is read too."""
    try:
        return load_submission(folder, limits)
    except TooLargeUpload:
        raise
    except UnusableSubmission:
        zips = [p for p in sorted(folder.glob("*")) if p.suffix.lower() == ".zip" and not p.is_symlink()]
        if len(zips) != 1:
            raise
        return load_submission(zips[0], limits)


def unusable_results(reason: str) -> dict[str, Any]:
    return {
        "score": 0.0,
        "output": f"cannot grade this submission: {reason}",
        "stdout_visibility": "hidden",
        "tests": [],
    }


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Write results.json as root, atomically: Gradescope never reads a half-written file."""
    fd, temporary = tempfile.mkstemp(prefix=".results-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(results, handle, indent=1)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


if __name__ == "__main__":
    sys.exit(main())
