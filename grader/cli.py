"""The command line: `grader grade PATH` grades one submission; `grader checks` lists the catalog."""

from __future__ import annotations

import json
import secrets
import signal
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from grader.assignments import UnknownAssignment, get_assignment, known_assignments
from grader.core import Grader
from grader.engine.executor import SandboxUnavailable
from grader.engine.report import Report
from grader.gradescope.bundle import gradescope_bundle
from grader.intake.uploads import UnusableSubmission, load_submission
from grader.service.cli import db_app, serve, settings_or_exit, users_app, worker

EXIT_UNUSABLE_INPUT = 2
EXIT_SANDBOX_UNAVAILABLE = 3
STATUS_STYLE = {"passed": "green", "failed": "red", "error": "magenta", "timeout": "yellow"}

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Grade CS231n assignment 2 submissions.")
err = Console(stderr=True, soft_wrap=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.command()(worker)
app.command()(serve)
app.command("gradescope-bundle")(gradescope_bundle)


def report_console() -> Console:
    """A console for tables: the terminal's width, or wide enough to keep check ids whole in logs."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 140)


class SandboxKind(StrEnum):
    docker = "docker"
    process = "process"


def stop_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@app.command()
def grade(
    path: Annotated[Path, typer.Argument(help="a folder or a .zip with layers.py, fc_net.py, optim.py")],
    assignment: Annotated[str, typer.Option(help="the check catalog")] = "cs231n-a2-fc",
    seed: Annotated[int | None, typer.Option(help="seed of the hidden inputs (random when omitted)")] = None,
    sandbox: Annotated[
        SandboxKind | None, typer.Option(help="docker (default), or process for development only")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print exactly one JSON document")] = False,
    cascade: Annotated[
        bool, typer.Option("--cascade", help="a bug also costs points in every check that relies on it")
    ] = False,
) -> None:
    """Grade one submission and print its report."""
    settings = settings_or_exit("grade")
    try:
        get_assignment(assignment)  # an unknown id is unusable input, found before the sandbox starts
        submission = load_submission(path)
    except (UnknownAssignment, UnusableSubmission) as exc:
        err.print(f"[red]cannot grade {path}:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_UNUSABLE_INPUT) from exc
    kind = sandbox or SandboxKind(settings.sandbox)
    if kind == SandboxKind.process:
        err.print(
            "[yellow]warning:[/yellow] --sandbox process runs the student's code as a plain local process, "
            "without isolation: use it for development only",
            highlight=False,
        )
    run_seed = seed if seed is not None else secrets.randbelow(2**31)
    signal.signal(signal.SIGTERM, stop_on_sigterm)  # so that `finally` removes a running container
    try:
        with (
            Grader(settings, sandbox="process" if kind == SandboxKind.process else "docker") as grader,
            Progress(
                TextColumn("grading"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
                disable=as_json or not err.is_terminal,
            ) as bar,
        ):
            task = bar.add_task("grading", total=None)
            report = grader.grade(
                submission.files,
                assignment,
                seed=run_seed,
                origins=submission.origins,
                cascade=cascade,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except SandboxUnavailable as exc:
        err.print(f"[red]the sandbox could not run:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_SANDBOX_UNAVAILABLE) from exc
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict()) + "\n")
        return
    print_report(report, missing=submission.missing)


def print_report(report: Report, missing: tuple[str, ...]) -> None:
    console = report_console()
    console.print(
        f"[bold]{report.assignment}[/bold]  seed {report.seed}  "
        f"score [bold]{report.score:g} / {report.max_score:g}[/bold]"
    )
    if missing:
        console.print(f"[yellow]not submitted: {', '.join(missing)}[/yellow]")
    for note in report.notes:
        console.print(f"[yellow]{note}[/yellow]", markup=True, highlight=False)
    for question in report.questions:
        table = Table(
            title=f"{question.name}: {question.score:g} / {question.max_score:g}", title_justify="left"
        )
        for column in ("check", "status", "score", "worst error"):
            table.add_column(column)
        for check in (c for c in report.checks if c.question == question.name):
            # Errors of passing checks are below their thresholds; printed, they only worry students.
            worst = "" if check.status == "passed" else f"{max(check.errors.values(), default=1.0):.1e}"
            style = STATUS_STYLE[check.status]
            table.add_row(
                check.id, f"[{style}]{check.status}[/{style}]", f"{check.score:g}/{check.max_score:g}", worst
            )
        console.print(table)
    failing = [c for c in report.checks if c.status != "passed"]
    if failing:
        console.print("[bold]Feedback[/bold]")
    for check in failing:
        console.print(f"[bold]{check.id}[/bold] ({check.status}, {check.visibility})")
        console.print(check.message, markup=False)


@app.command()
def checks(assignment: Annotated[str, typer.Option(help="the check catalog")] = "cs231n-a2-fc") -> None:
    """List the checks of a catalog."""
    try:
        catalog = get_assignment(assignment)
    except UnknownAssignment as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(EXIT_UNUSABLE_INPUT) from exc
    table = Table(title=catalog.title, title_justify="left")
    for column in ("check", "question", "points", "visibility", "what it checks"):
        table.add_column(column)
    for item in catalog.build_checks(0):
        table.add_row(item.id, item.question.split()[0], f"{item.points:g}", item.visibility, item.summary)
    console = report_console()
    console.print(table)
    others = sorted(name for name in known_assignments() if name != catalog.name)
    console.print(f"other editions: {', '.join(others)} (grader checks --assignment NAME)")


if __name__ == "__main__":
    app()
