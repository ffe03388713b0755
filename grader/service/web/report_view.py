"""A grade report as the submission page shows it: checks by question, each failing check with its
errors against their thresholds and its diagnosis; and what changed since the previous attempt."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from grader.assignments import UnknownAssignment, get_assignment

DIAGNOSIS_LINE = re.compile(r"^likely mistake \[(?P<id>[^\]]+)\]: (?P<text>.*)$")


def _number(value: Any) -> float:
    """A report's number; 0 for what an older or damaged report holds instead (the page still shows)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _checks(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's checks, each with the fields the page reads (an older report may lack some)."""
    defaults = {
        "id": "?",
        "status": "error",
        "score": 0.0,
        "max_score": 0.0,
        "question": "",
        "visibility": "visible",
    }
    checks = report.get("checks") or []
    return [{**defaults, **check} for check in checks if isinstance(check, dict)]


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
        return _number(self.check["score"]) < _number(self.check["max_score"])


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
    except UnknownAssignment:  # a report of a catalog this version no longer has
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
    views = [
        QuestionView(str(q.get("name", "")), _number(q.get("score")), _number(q.get("max_score")))
        for q in report.get("questions") or []
        if isinstance(q, dict)
    ]
    by_name = {view.name: view for view in views}
    for check in _checks(report):
        diagnoses, rest = _split_message(str(check.get("message", "")))
        view = CheckView(
            check, _errors(catalog, check) if check["status"] != "passed" else [], diagnoses, rest
        )
        name = str(check.get("question", ""))
        question = by_name.get(name)
        if question is None:
            question = by_name[name] = QuestionView(name, 0.0, 0.0)
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
    before = {check.get("id"): check for check in _checks(previous)}
    changes = []
    for check in _checks(current):
        earlier = before.get(check.get("id"))
        was, now = _number(earlier.get("score")) if earlier else 0.0, _number(check.get("score"))
        passed_before = earlier is not None and earlier.get("status") == "passed"
        passes = check.get("status") == "passed"
        if was != now or passed_before != passes:
            changes.append(
                Change(check["id"], was, now, passes and not passed_before, passed_before and not passes)
            )
    return changes
