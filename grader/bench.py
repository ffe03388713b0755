"""`make bench`: how long grading one full submission takes, against a floor measured in the same run.

Reports medians: the floor (start a Python process that imports numpy, the least any sandboxed run
costs), grading one correct submission end to end with the local executor, their ratio, and where the
sandbox's time goes by kind of probe (the share of numeric gradient checks among them).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from grader.assignments import get_assignment
from grader.engine.grading import grade_submission
from grader.engine.probes import build_plan
from grader.sandbox_client.executor import LocalProcessExecutor
from grader.submissions.intake import load_submission

EXAMPLE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "submissions" / "correct_course"


def timed(action: object) -> float:
    start = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - start


def seconds_by_recipe(submission_path: Path, seed: int) -> dict[str, float]:
    """Sandbox seconds per recipe for one grading run, as the runner measured them per probe."""
    assignment = get_assignment("cs231n-a2-fc")
    checks = assignment.build_checks(seed)
    probes = [(f"{check.id}/{probe.label}", probe) for check in checks for probe in check.probes]
    plan = build_plan(
        probes, package=assignment.package, package_aliases=assignment.package_aliases, limits={}
    )
    outcomes = LocalProcessExecutor().run(plan, load_submission(submission_path).files)
    totals: dict[str, float] = defaultdict(float)
    for entry, outcome in zip(plan.document["probes"], outcomes, strict=True):
        totals[entry["recipe"]] += outcome.seconds
    return dict(totals)


def main(runs: int = typer.Option(10, min=3, help="runs per measurement")) -> None:
    assignment = get_assignment("cs231n-a2-fc")
    submission = load_submission(EXAMPLE)
    floor = [
        timed(lambda: subprocess.run([sys.executable, "-I", "-c", "import numpy"], check=True))
        for _ in range(runs)
    ]
    grading = [
        timed(
            lambda seed=seed: grade_submission(
                submission, assignment, seed=seed, executor=LocalProcessExecutor()
            )
        )
        for seed in range(runs)
    ]
    by_recipe = [seconds_by_recipe(EXAMPLE, seed) for seed in range(runs)]
    floor_median, grading_median = statistics.median(floor), statistics.median(grading)
    console = Console()
    table = Table(title=f"grading one correct submission, local executor, median of {runs} runs")
    for column in ("measure", "median (s)", "ratio to floor"):
        table.add_column(column)
    table.add_row("floor: python -I -c 'import numpy'", f"{floor_median:.3f}", "1.00")
    table.add_row(
        "grade one full submission", f"{grading_median:.3f}", f"{grading_median / floor_median:.2f}"
    )
    recipes = sorted({name for run in by_recipe for name in run})
    sandbox_total = statistics.median(sum(run.values()) for run in by_recipe)
    for recipe in recipes:
        median = statistics.median(run.get(recipe, 0.0) for run in by_recipe)
        table.add_row(f"  sandbox time in {recipe} probes", f"{median:.3f}", "")
    numeric = statistics.median(
        run.get("model_numeric", 0.0) / grade for run, grade in zip(by_recipe, grading, strict=True)
    )
    console.print(table)
    console.print(
        f"sandbox probe time (sum of probes): {sandbox_total:.3f} s; "
        f"share of the grading time in numeric gradient checks: {numeric:.1%}"
    )


if __name__ == "__main__":
    typer.run(main)
