"""The live state of a submission, as its page's script receives it (a server-sent event, or the polling
answer): its status, its place in the queue, the checks done so far by question, then its score."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from grader.service.submissions.models import Submission
from grader.service.submissions.views import describe

FINAL = ("graded", "failed")


def live_payload(session: Session, submission: Submission, *, as_staff: bool) -> dict[str, Any]:
    from grader.service.assignments.models import Assignment

    assignment = session.get(Assignment, submission.assignment_id)
    assert assignment is not None
    (described,) = describe(session, [submission], assignment, as_staff=as_staff)
    return {
        "status": described.status,
        "final": described.status in FINAL,
        "score": described.score,
        "max_score": described.max_score,
        "queue_position": None,
        "questions": [],
    }
