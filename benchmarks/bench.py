"""`make bench`: how long grading takes, as medians, against floors measured in the same run.

Local executor: the floor is starting a Python process that imports numpy; we report the grading time,
its ratio to that floor and where the sandbox's time goes (the share of numeric gradient checks).
Docker executor: the floor is `docker run --rm --network none <image> python3 -c "import numpy"`; we
report grading with a fresh container per submission, with a pool of pre-started single-use containers,
and the throughput of back-to-back submissions graded by two workers.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from grader import EXAMPLE_SUBMISSION
from grader.assignments import get_assignment
from grader.engine.executor import Executor
from grader.engine.grading import grade_submission
from grader.engine.probes import build_plan
from grader.intake.uploads import Submission, load_submission
from grader.sandbox_client.docker_executor import DockerExecutor, container_options
from grader.sandbox_client.executor import LocalProcessExecutor
from grader.sandbox_client.pool import ContainerPool
from grader.settings import get_settings

ASSIGNMENT = get_assignment("cs231n-a2-fc")
# The limits a grading has in the service, and the containers': the executors are built here (and not
# through grader.core.Grader) to measure each way of running them.
GRADING_LIMITS = get_settings().grading_limits()
CONTAINER_LIMITS = get_settings().container_limits()


def timed(action: Callable[..., object], *args: Any) -> float:
    start = time.perf_counter()
    action(*args)
    return time.perf_counter() - start


def grade_once(submission: Submission, executor: Executor, seed: int) -> None:
    report = grade_submission(submission, ASSIGNMENT, seed=seed, executor=executor, limits=GRADING_LIMITS)
    if report.score != report.max_score:  # a benchmark of a grader that fails correct code means nothing
        raise SystemExit(f"the example submission lost points with {executor.name}: {report.score}")


def seconds_by_recipe(submission: Submission, seed: int) -> dict[str, float]:
    """Sandbox seconds per recipe for one grading run, as the runner measured them per probe."""
    checks = ASSIGNMENT.build_checks(seed)
    probes = [(f"{check.id}/{probe.label}", probe) for check in checks for probe in check.probes]
    plan = build_plan(
        probes, package=ASSIGNMENT.package, package_aliases=ASSIGNMENT.package_aliases, limits={}
    )
    outcomes = LocalProcessExecutor().run(plan, submission.files)
    totals: dict[str, float] = defaultdict(float)
    for entry, outcome in zip(plan.document["probes"], outcomes, strict=True):
        totals[entry["recipe"]] += outcome.seconds
    return dict(totals)


def local_rows(submission: Submission, runs: int) -> tuple[list[tuple[str, float, float | None]], str]:
    floor = statistics.median(
        timed(lambda: subprocess.run([sys.executable, "-I", "-c", "import numpy"], check=True))
        for _ in range(runs)
    )
    grading = [timed(grade_once, submission, LocalProcessExecutor(), seed) for seed in range(runs)]
    plain = LocalProcessExecutor(use_servers=False)
    without_servers = statistics.median(timed(grade_once, submission, plain, seed) for seed in range(runs))
    by_recipe = [seconds_by_recipe(submission, seed) for seed in range(runs)]
    median = statistics.median(grading)
    rows: list[tuple[str, float, float | None]] = [
        ("local floor: python -I -c 'import numpy'", floor, 1.0),
        ("local: grade one full submission", median, median / floor),
        (
            "local, a new process per probe (no probe servers): grade one",
            without_servers,
            without_servers / floor,
        ),
    ]
    for recipe in sorted({name for run in by_recipe for name in run}):
        rows.append(
            (
                f"  local sandbox time in {recipe} probes",
                statistics.median(r.get(recipe, 0.0) for r in by_recipe),
                None,
            )
        )
    share = statistics.median(
        r.get("model_numeric", 0.0) / g for r, g in zip(by_recipe, grading, strict=True)
    )
    return rows, f"share of the local grading time spent in numeric gradient checks: {share:.1%}"


def warm_pool_times(
    pool: ContainerPool, executor: Executor, submission: Submission, runs: int
) -> list[float]:
    """Grading times with every container of the pool started and waiting beforehand."""
    times = []
    for seed in range(runs):
        pool.wait_until_full()
        times.append(timed(grade_once, submission, executor, seed))
    return times


def docker_rows(
    client: Any, image: str, submission: Submission, runs: int, throughput_count: int
) -> tuple[list[tuple[str, float, float | None]], str]:
    floor = statistics.median(
        timed(
            lambda: subprocess.run(
                ["docker", "run", "--rm", "--network", "none", image, "python3", "-c", "import numpy"],
                check=True,
                capture_output=True,
            )
        )
        for _ in range(runs)
    )
    fresh = DockerExecutor(client, image, CONTAINER_LIMITS)
    fresh_median = statistics.median(timed(grade_once, submission, fresh, seed) for seed in range(runs))
    options = container_options(image, CONTAINER_LIMITS)
    with ContainerPool(client, options, size=2) as pool:
        pooled = DockerExecutor(client, image, CONTAINER_LIMITS, pool=pool)
        warm = warm_pool_times(pool, pooled, submission, runs)
        pool.wait_until_full()
        with ThreadPoolExecutor(max_workers=2) as workers:
            elapsed = timed(
                lambda: list(
                    workers.map(lambda s: grade_once(submission, pooled, s), range(throughput_count))
                )
            )
    plain_options = container_options(image, CONTAINER_LIMITS, use_servers=False)
    with ContainerPool(client, plain_options, size=2) as pool:
        plain = DockerExecutor(client, image, CONTAINER_LIMITS, pool=pool, use_servers=False)
        without_servers = warm_pool_times(pool, plain, submission, runs)
    warm_median = statistics.median(warm)
    plain_median = statistics.median(without_servers)
    rows: list[tuple[str, float, float | None]] = [
        ("docker floor: docker run --rm --network none <image> python3 -c 'import numpy'", floor, 1.0),
        ("docker, fresh container per submission: grade one", fresh_median, fresh_median / floor),
        ("docker, pool of 2 pre-started containers: grade one", warm_median, warm_median / floor),
        ("docker, pool of 2, a new process per probe (no probe servers)", plain_median, plain_median / floor),
    ]
    rate = throughput_count / elapsed * 60
    return rows, (
        f"throughput: {throughput_count} correct submissions back to back, 2 workers, pool of 2: "
        f"{elapsed:.1f} s, {rate:.1f} submissions per minute"
    )


def main(
    runs: int = typer.Option(10, min=3, help="runs per measurement"),
    throughput_count: int = typer.Option(100, min=2, help="submissions in the throughput run"),
    docker_only: bool = typer.Option(False, help="skip the local-executor measurements"),
) -> None:
    import docker

    from grader.sandbox_client.images import build_sandbox_image

    submission = load_submission(EXAMPLE_SUBMISSION)
    console = Console(width=140)
    rows: list[tuple[str, float, float | None]] = []
    notes = []
    if not docker_only:
        local, note = local_rows(submission, runs)
        rows += local
        notes.append(note)
    client = docker.from_env()
    image = build_sandbox_image(client, log=lambda line: console.print(line))
    remote, note = docker_rows(client, image, submission, runs, throughput_count)
    rows += remote
    notes.append(note)
    table = Table(title=f"grading one correct submission (grader/examples/correct_course), median of {runs}")
    for column in ("measure", "median (s)", "ratio to its floor"):
        table.add_column(column)
    for name, seconds, ratio in rows:
        table.add_row(name, f"{seconds:.3f}", "" if ratio is None else f"{ratio:.2f}")
    console.print(table)
    for line in notes:
        console.print(line)


if __name__ == "__main__":
    typer.run(main)
