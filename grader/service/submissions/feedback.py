"""What a student may see of a report: the hidden checks only as the assignment allows, the score of
what they may see, and never the run's seed (the catalog is public: the seed would reveal hidden inputs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from grader.engine.visibility import hidden_only_failures, without_hidden_failures
from grader.service.assignments.models import Assignment, HiddenResults
from grader.service.submissions.service import due_for


def shows_hidden(session: Session, assignment: Assignment, student_id: str, now: datetime) -> bool:
    if assignment.hidden_results is not HiddenResults.after_due:
        return shows_hidden_after(assignment, due_at=assignment.due_at, now=now)
    return shows_hidden_after(assignment, due_at=due_for(session, assignment, student_id), now=now)


def shows_hidden_after(assignment: Assignment, *, due_at: datetime, now: datetime) -> bool:
    """shows_hidden, with the student's due date already known (a page of many rows reads them at once)."""
    if assignment.hidden_results is HiddenResults.always:
        return True
    if assignment.hidden_results is HiddenResults.never:
        return False
    return now > due_at


def students_report(report: dict[str, Any], *, show_hidden: bool) -> dict[str, Any]:
    """The report as its student may see it; scores count the checks they see."""
    checks = [check for check in report["checks"] if show_hidden or check["visibility"] != "hidden"]
    if not show_hidden:
        checks = without_hidden_failures(checks, hidden_only_failures(report))
    questions = []
    for question in report["questions"]:
        mine = [check for check in checks if check["question"] == question["name"]]
        if mine:
            questions.append(
                {
                    "name": question["name"],
                    "score": _total(mine, "score"),
                    "max_score": _total(mine, "max_score"),
                }
            )
    seen = {key: value for key, value in report.items() if key != "seed"}
    seen.update(
        checks=checks,
        questions=questions,
        score=_total(checks, "score"),
        max_score=_total(checks, "max_score"),
    )
    if not show_hidden and len(checks) < len(report["checks"]):
        seen["notes"] = [
            *seen.get("notes", []),
            "hidden checks are not shown here, nor counted in this score",
        ]
    return seen


def _total(checks: list[dict[str, Any]], field: str) -> float:
    return round(sum(float(check[field]) for check in checks), 6)
