"""A grade report as the submission page shows it: checks by question, each failing check with its
errors against their thresholds and its diagnosis; and what changed since the previous attempt."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from grader.assignments import get_assignment

DIAGNOSIS_LINE = re.compile(r"^likely mistake \[(?P<id>[^\]]+)\]: (?P<text>.*)$")


@dataclass
class ErrorLine:
    name: str
    value: float
    threshold: float | None

    @property
    def over(self) -> bool:
        return self.threshold is not None and self.value > self.threshold


@dataclass
class CheckView:
    check: dict[str, Any]
    errors: list[ErrorLine]
    diagnoses: list[tuple[str, str]]  # (mistake id, its explanation)
    message: str  # the rest of the message: what the code printed, its traceback, what differs

    @property
    def lost_points(self) -> bool:
        return float(self.check["score"]) < float(self.check["max_score"])


@dataclass
class QuestionView:
    name: str
    score: float
    max_score: float
    checks: list[CheckView] = field(default_factory=list)


@cache
def _thresholds(catalog: str) -> dict[str, tuple[dict[str, float], float | None]]:
    """Each check's thresholds by error name, and its default (a catalog's checks are the same for every
    seed, but for their inputs)."""
    found: dict[str, tuple[dict[str, float], float | None]] = {}
    for check in get_assignment(catalog).build_checks(0):
        judge = check.judge
        thresholds = getattr(judge, "thresholds", None)
        default = getattr(judge, "default", getattr(judge, "threshold", None))  # the judges name it so
        found[check.id] = (
            dict(thresholds) if isinstance(thresholds, dict) else {},
            float(default) if isinstance(default, int | float) else None,
        )
    return found


def threshold_of(catalog: str, check_id: str, error: str) -> float | None:
    try:
        thresholds, default = _thresholds(catalog).get(check_id, ({}, None))
    except KeyError:  # a catalog this version no longer has
        return None
    return thresholds.get(error, default)


def _errors(catalog: str, check: dict[str, Any]) -> list[ErrorLine]:
    errors = check.get("errors") or {}
    if not isinstance(errors, dict):
        return []
    return [
        ErrorLine(name, float(value), threshold_of(catalog, check["id"], name))
        for name, value in sorted(errors.items())
        if isinstance(value, int | float)
    ]


def _split_message(message: str) -> tuple[list[tuple[str, str]], str]:
    diagnoses, rest = [], []
    for line in message.splitlines():
        matched = DIAGNOSIS_LINE.match(line)
        if matched:
            diagnoses.append((matched["id"], matched["text"]))
        else:
            rest.append(line)
    return diagnoses, "\n".join(rest).strip()


def questions_of(report: dict[str, Any]) -> list[QuestionView]:
    catalog = str(report.get("assignment", ""))
    views = [QuestionView(q["name"], float(q["score"]), float(q["max_score"])) for q in report["questions"]]
    by_name = {view.name: view for view in views}
    for check in report["checks"]:
        diagnoses, rest = _split_message(str(check.get("message", "")))
        view = CheckView(
            check, _errors(catalog, check) if check["status"] != "passed" else [], diagnoses, rest
        )
        question = by_name.get(check["question"])
        if question is None:
            question = by_name[check["question"]] = QuestionView(check["question"], 0.0, 0.0)
            views.append(question)
        question.checks.append(view)
    return views


@dataclass
class Change:
    check_id: str
    before: float
    after: float
    now_passing: bool
    now_failing: bool


def changes_since(previous: dict[str, Any], current: dict[str, Any]) -> list[Change]:
    """Checks whose points changed since the previous attempt (checks only one of the two has are
    compared with 0 points)."""
    before = {check["id"]: check for check in previous["checks"]}
    changes = []
    for check in current["checks"]:
        earlier = before.get(check["id"])
        was, now = float(earlier["score"]) if earlier else 0.0, float(check["score"])
        passed_before = earlier is not None and earlier["status"] == "passed"
        passes = check["status"] == "passed"
        if was != now or passed_before != passes:
            changes.append(
                Change(check["id"], was, now, passes and not passed_before, passed_before and not passes)
            )
    return changes
