"""Grade one submission: plan the probes, run them in the sandbox, judge on the trusted side, report."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from grader.engine.assignment import Assignment
from grader.engine.checks import Check, Judgement, TrustedContext
from grader.engine.executor import Executor, ProgressCallback
from grader.engine.outputs import ProbeOutcome
from grader.engine.probes import build_plan
from grader.engine.report import CheckReport, CheckStatus, QuestionReport, Report
from grader.intake.packages import package_names
from grader.intake.uploads import Submission

NOT_RUN_STATUSES: Mapping[str, tuple[CheckStatus, str]] = {
    "timeout": ("timeout", "time limit"),
    "error": ("error", "exception"),
    "crashed": ("error", "crashed"),
    "memory_limit": ("error", "memory limit"),
    "output_limit": ("error", "output limit"),
    "invalid_output": ("error", "invalid output"),
}

# (ids of the checks whose own probes have all run, in catalog order; probes finished; probes in all).
ChecksProgressCallback = Callable[[tuple[str, ...], int, int], None]


@dataclass(frozen=True)
class GradingLimits:
    """Limits of every probe, handed to the sandbox in its plan (Settings.grading_limits() builds them)."""

    time_scale: float  # multiplies each probe's own time limit, for slow machines
    memory_bytes: int  # address space of one probe
    file_bytes: int  # the largest file (and log) a probe writes


def grade_submission(
    submission: Submission,
    assignment: Assignment,
    *,
    seed: int,
    executor: Executor,
    limits: GradingLimits | None = None,
    progress: ProgressCallback | None = None,
    checks_progress: ChecksProgressCallback | None = None,
) -> Report:
    """The report of `submission`; `limits` are the settings' (get_settings()) when omitted.

    `progress` hears of probes as they finish; `checks_progress` also of the checks that have run (their
    verdicts come at the end: a check has run, not passed)."""
    if limits is None:
        from grader.settings import get_settings  # here: the Gradescope bundle grades without pydantic

        limits = get_settings().grading_limits()
    checks = assignment.build_checks(seed)
    probes = [(f"{check.id}/{probe.label}", probe) for check in checks for probe in check.probes]
    probes += [(f"{check.id}/baseline/{b.label}", b) for check in checks for b in check.baselines]
    names = package_names(
        submission.files,
        submission.origins,
        default=assignment.package,
        known_aliases=assignment.package_aliases,
    )
    plan = build_plan(
        probes,
        package=names.package,
        package_aliases=names.aliases,
        limits={"memory_bytes": limits.memory_bytes, "file_bytes": limits.file_bytes},
        time_scale=limits.time_scale,
    )
    context = TrustedContext(
        assignment.reference_modules(), assignment.mutants, isolate=not assignment.cascading
    )
    # The reference's outputs do not depend on the student: compute them while the sandbox runs.
    with ThreadPoolExecutor(max_workers=1) as background:
        expected = background.submit(lambda: [context.expected(p) for check in checks for p in check.probes])
        heard = _with_checks_run(checks, plan.probe_ids, progress, checks_progress)
        outcomes = dict(zip(plan.probe_ids, executor.run(plan, submission.files, heard), strict=True))
        expected.result()
    reports = judge_checks(checks, outcomes, context, assignment)
    add_dependency_notes(checks, reports)
    report = summarize(assignment, seed, reports)
    report.sandbox = executor.description()
    report.notes = assignment.notes(submission.files)
    for check_report in reports:  # said where it explains a failure too: the model's checks
        if check_report.status != "passed" and check_report.target.startswith("fc_net."):
            check_report.message = "\n".join([*report.notes, check_report.message])
    return report


def _with_checks_run(
    checks: Sequence[Check],
    probe_ids: Sequence[str],
    progress: ProgressCallback | None,
    checks_progress: ChecksProgressCallback | None,
) -> ProgressCallback | None:
    """`progress`, also telling `checks_progress` which checks have run. The sandbox runs the probes in
    plan order, so `finished` probes are the plan's first ones: a check has run once they include all its
    own probes (its baselines, composed at the plan's end, judge it only when it fails)."""
    if checks_progress is None:
        return progress
    position = {probe_id: index for index, probe_id in enumerate(probe_ids)}
    ends = [
        (check.id, 1 + max((position[f"{check.id}/{probe.label}"] for probe in check.probes), default=-1))
        for check in checks
    ]

    def heard(finished: int, total: int) -> None:
        if progress is not None:
            progress(finished, total)
        checks_progress(tuple(check_id for check_id, end in ends if end <= finished), finished, total)

    return heard


def judge_checks(
    checks: Sequence[Check],
    outcomes: Mapping[str, ProbeOutcome],
    context: TrustedContext,
    assignment: Assignment,
) -> list[CheckReport]:
    """Checks without baselines first: a model is judged knowing which of its layers fail their own."""
    reports: dict[str, CheckReport] = {}

    def judge(group: Sequence[Check]) -> None:
        for check in group:
            baselines = [outcomes[f"{check.id}/baseline/{b.label}"] for b in check.baselines]
            context.baselines[check.id] = baselines
            check_outcomes = [outcomes[f"{check.id}/{p.label}"] for p in check.probes]
            reports[check.id] = judge_check(check, check_outcomes, context, assignment)

    judge([check for check in checks if not check.baselines])
    context.failing_targets = {report.target for report in reports.values() if report.status != "passed"}
    judge([check for check in checks if check.baselines])
    return [reports[check.id] for check in checks]


def judge_check(
    check: Check, outcomes: Sequence[ProbeOutcome], context: TrustedContext, assignment: Assignment
) -> CheckReport:
    judgement = check.judge(check, outcomes, context)
    failed_run = next((o for o in outcomes if not o.ran), None)
    some_ran = any(o.ran for o in outcomes)
    status: CheckStatus
    if failed_run is not None and not some_ran:
        # Nothing ran: the reason is the whole story (no "param_W1 missing" for code that never ran).
        judgement.fraction, judgement.diagnosis = 0.0, []
        status, lines = NOT_RUN_STATUSES[failed_run.status][0], not_run_lines(failed_run)
    elif failed_run is not None:
        status, lines = NOT_RUN_STATUSES[failed_run.status][0], not_run_lines(failed_run) + judgement.lines
    else:
        status = "passed" if judgement.fraction >= 1.0 else "failed"
        lines = judgement.lines or ["all outputs agree with the reference"]
    lines += explain(judgement, assignment)
    if check.visibility == "hidden" and status != "passed" and some_ran:
        lines.append("(hidden check: its inputs and expected values are not shown)")
    return CheckReport(
        id=check.id,
        target=check.target,
        question=check.question,
        status=status,
        score=round(check.points * judgement.fraction, 4),
        max_score=check.points,
        visibility=check.visibility,
        message="\n".join(lines),
        diagnosis=judgement.diagnosis,
        errors={key: float(f"{value:.3e}") for key, value in judgement.errors.items()},
    )


def not_run_lines(outcome: ProbeOutcome) -> list[str]:
    """Why a probe's code did not run to its end, labelled (`time limit: ...`), and what it printed."""
    lines = [f"{NOT_RUN_STATUSES[outcome.status][1]}: {outcome.message}".rstrip()]
    if outcome.stdout:
        lines.append(f"your code printed (last lines):\n{outcome.stdout}")
    return lines


def explain(judgement: Judgement, assignment: Assignment) -> list[str]:
    lines = []
    for code in judgement.diagnosis:
        where = judgement.where.get(code)
        place = f" (in {', '.join(where)} only)" if where else ""
        lines.append(f"likely mistake [{code}]{place}: {assignment.mistakes[code]}")
    return lines


def add_dependency_notes(checks: Sequence[Check], reports: Sequence[CheckReport]) -> None:
    """A failing check that relies on other functions names those of them that fail their own checks."""
    failing_targets = {report.target for report in reports if report.status != "passed"}
    for check, report in zip(checks, reports, strict=True):
        if report.status == "passed" or not check.depends_on:
            continue
        culprits = [target for target in check.depends_on if target in failing_targets]
        if culprits:
            report.message += "\nit relies on functions that fail their own checks: " + ", ".join(culprits)


def summarize(assignment: Assignment, seed: int, reports: list[CheckReport]) -> Report:
    questions = [
        QuestionReport(
            name=name,
            score=round(sum(r.score for r in reports if r.question == name), 4),
            max_score=round(sum(r.max_score for r in reports if r.question == name), 4),
        )
        for name in assignment.questions
    ]
    return Report(
        assignment=assignment.name,
        seed=seed,
        score=round(sum(q.score for q in questions), 4),
        max_score=round(sum(q.max_score for q in questions), 4),
        questions=questions,
        checks=reports,
    )
