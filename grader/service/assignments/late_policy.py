"""An assignment's late policy: how late a submission is (every started day counts), what it costs, and
whether it is taken at all."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from grader.service.assignments.models import Assignment, LatePolicy
from grader.service.errors import LateRefused


@dataclass(frozen=True)
class Lateness:
    late_days: int
    penalty: float
    counts: bool  # False: too late for the policy (it would be refused now), so it never counts


def lateness(assignment: Assignment, submitted_at: datetime, due_at: datetime) -> Lateness:
    """Days late (every started day counts) and the penalty the assignment's policy sets for them."""
    if submitted_at <= due_at:
        return Lateness(0, 0.0, True)
    days = math.ceil((submitted_at - due_at) / timedelta(days=1))
    if assignment.late_policy is LatePolicy.none:
        return Lateness(days, 1.0, False)
    too_late = assignment.max_late_days is not None and days > assignment.max_late_days
    penalty = round(min(1.0, assignment.penalty_per_day * days), 6)  # 0.3, not 0.30000000000000004
    return Lateness(days, penalty, not too_late)


def final_score(score: float, penalty: float) -> float:
    return max(0.0, round(score * (1.0 - penalty), 6))


def check_may_hand_in(assignment: Assignment, now: datetime, due_at: datetime) -> None:
    """Refuse a submission the late policy would never count (before anything is stored)."""
    late = lateness(assignment, now, due_at)
    if late.counts:
        return
    when = due_at.isoformat(timespec="minutes")
    if assignment.late_policy is LatePolicy.none:
        raise LateRefused(
            f"the due date ({when}) has passed and {assignment.slug} takes no late submissions; "
            "the course's staff can grant an extension"
        )
    raise LateRefused(
        f"{late.late_days} days after the due date ({when}) is past the {assignment.max_late_days} late "
        f"days {assignment.slug} allows; the course's staff can grant an extension"
    )
