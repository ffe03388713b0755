"""A report (the `grader grade --json` document) in Gradescope's results.json format: one Gradescope test
per check, numbered question.position ("2.3"), its points, passed only with full marks, its message as
the output, and hidden checks shown after the due date.

Pure functions of the report, with the standard library only: the API's results.json and the
autograder the bundle installs in Gradescope's container both call them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from grader.engine.visibility import hidden_only_failures, without_hidden_failures

GradescopeVisibility = Literal["hidden", "after_due_date", "after_published", "visible"]
# A check hidden from students until the due date is a test Gradescope shows after it; a visibility this
# version does not know stays hidden for good.
VISIBILITY: Mapping[str, GradescopeVisibility] = {"visible": "visible", "hidden": "after_due_date"}
SCORE_DECIMALS = 4  # as the report's own scores


def points(value: float) -> float:
    return round(float(value), SCORE_DECIMALS)


def check_numbers(report: Mapping[str, Any]) -> dict[str, str]:
    """Each check's number, "question.position" counted over the whole report (hidden checks too), so
    that a check keeps its number in every view of the report."""
    questions = {question["name"]: index for index, question in enumerate(report["questions"], start=1)}
    numbers: dict[str, str] = {}
    seen: dict[str, int] = {}
    for check in report["checks"]:
        question = check["question"]
        if question not in questions:
            questions[question] = len(questions) + 1
        seen[question] = seen.get(question, 0) + 1
        numbers[check["id"]] = f"{questions[question]}.{seen[question]}"
    return numbers


@functools.lru_cache(maxsize=16)
def check_summaries(assignment: str) -> Mapping[str, str]:
    """What each check of a catalog checks, by id ({} for a catalog this grader does not know)."""
    from grader.assignments import UnknownAssignment, get_assignment

    try:
        catalog = get_assignment(assignment)
    except UnknownAssignment:
        return {}
    return {check.id: check.summary for check in catalog.build_checks(0)}


def gradescope_results(
    report: Mapping[str, Any],
    *,
    numbers: Mapping[str, str] | None = None,
    summaries: Mapping[str, str] | None = None,
    execution_time: float | None = None,
    shown_before_due_date: bool = False,
) -> dict[str, Any]:
    """The results.json document of `report`, as it is given (a student's view of it holds what they may
    see: its score is the sum of those checks).

    `numbers`: the checks' numbers (default: counted in `report`; pass those of the whole report for a
    view that leaves checks out); `summaries`: a readable line for each check id; `shown_before_due_date`: the
    document goes to students whatever the date (Gradescope's own autograder) and Gradescope shows the
    hidden checks only after the due date, so nothing shown before it (the summary, the visible tests'
    outputs) may tell a hidden result.
    """
    numbers = numbers if numbers is not None else check_numbers(report)
    summaries = summaries or {}
    checks: list[dict[str, Any]] = list(report["checks"])
    if shown_before_due_date:
        redacted = without_hidden_failures(
            [check for check in checks if check["visibility"] != "hidden"], hidden_only_failures(report)
        )
        by_id = {check["id"]: check for check in redacted}
        checks = [by_id.get(check["id"], check) for check in checks]
    tests = [_test(check, numbers, summaries) for check in checks]
    results: dict[str, Any] = {
        "score": points(math.fsum(test["score"] for test in tests)),
        "output": _summary(report, checks, shown_before_due_date=shown_before_due_date),
        "output_format": "text",
        "visibility": "visible",
        "tests": tests,
    }
    if execution_time is not None:
        results["execution_time"] = max(0, math.ceil(execution_time))
    return results


def _test(
    check: Mapping[str, Any], numbers: Mapping[str, str], summaries: Mapping[str, str]
) -> dict[str, Any]:
    score, max_score = points(check["score"]), points(check["max_score"])
    full_marks = score >= max_score if max_score > 0 else check["status"] == "passed"
    summary = summaries.get(check["id"])
    return {
        "name": f"{check['id']}: {summary}" if summary else str(check["id"]),
        "number": numbers.get(check["id"], str(check["id"])),
        "score": score,
        "max_score": max_score,
        "status": "passed" if full_marks else "failed",
        "output": _test_output(check),
        "output_format": "text",
        "visibility": VISIBILITY.get(str(check["visibility"]), "hidden"),
    }


def _test_output(check: Mapping[str, Any]) -> str:
    """The check's message, which explains the mistakes it diagnosed; a code it does not mention is added."""
    message = str(check.get("message", ""))
    lines = [message] if message else []
    lines += [f"likely mistake: {code}" for code in check.get("diagnosis", []) if f"[{code}]" not in message]
    if check.get("status") in ("error", "timeout") and not message:
        lines.append(str(check["status"]))
    return "\n".join(lines)


def _summary(
    report: Mapping[str, Any], checks: Sequence[Mapping[str, Any]], *, shown_before_due_date: bool
) -> str:
    """The score of each question, then the report's notes; before the due date, of visible checks only."""
    shown = [check for check in checks if not shown_before_due_date or check["visibility"] != "hidden"]
    total = points(math.fsum(float(check["score"]) for check in shown))
    most = points(math.fsum(float(check["max_score"]) for check in shown))
    lines = [f"{report.get('assignment', 'assignment')}: {total:g} / {most:g}"]
    for question in report.get("questions", []):
        mine = [check for check in shown if check["question"] == question["name"]]
        if mine:
            score = points(math.fsum(float(check["score"]) for check in mine))
            best = points(math.fsum(float(check["max_score"]) for check in mine))
            lines.append(f"  {question['name']}: {score:g} / {best:g}")
    hidden = [check for check in checks if check["visibility"] == "hidden"]
    if shown_before_due_date and hidden:
        hidden_points = points(math.fsum(float(check["max_score"]) for check in hidden))
        lines.append(
            f"{len(hidden)} hidden checks ({hidden_points:g} points) are not counted here: Gradescope shows "
            "them after the due date"
        )
    lines += [str(note) for note in report.get("notes", [])]
    return "\n".join(lines)
