"""GET /api/v1/submissions/{id}/results.json: the latest graded run's report in Gradescope's autograder
format (grader/gradescope/results.py), for a course that moves its history to Gradescope. Who may read
it, and what of it, is as for /report: staff and grades:read tokens the whole report; the submission's
student what students see, so their results.json holds the checks they may see and its score is theirs."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from sqlalchemy.orm import Session

from grader.gradescope.results import check_numbers, check_summaries, gradescope_results
from grader.service.deps import CallerDep, SessionDep
from grader.service.schemas import errors
from grader.service.submissions.access import GRADES, Seen, authorize_submission
from grader.service.submissions.views import latest_graded_runs, latest_report, report_for

router = APIRouter(prefix="/api/v1", tags=["submissions"], responses=errors(401, 403, 404, 422))


@router.get("/submissions/{submission_id}/results.json", responses=errors(409))
def get_gradescope_results(submission_id: str, session: SessionDep, caller: CallerDep) -> dict[str, Any]:
    """The report of the latest graded run as Gradescope's results.json (409 until there is one): a test
    per check, numbered question.position, hidden checks visible after the due date; a student's holds
    what they may see of the report."""
    seen = authorize_submission(session, caller, submission_id, scope=GRADES)
    return gradescope_report(session, seen)


def gradescope_report(session: Session, seen: Seen) -> dict[str, Any]:
    """The results.json of the submission's latest graded run as `seen` may see it; Conflict until then."""
    run = latest_graded_runs(session, [seen.submission.id]).get(seen.submission.id)
    if run is None:
        latest_report(session, seen.submission, seen.assignment, as_staff=seen.as_staff)  # raises Conflict
    assert run is not None
    report = report_for(session, run, seen.assignment, seen.submission.student_id, as_staff=seen.as_staff)
    whole: dict[str, Any] = json.loads(run.report or "{}")  # numbers count every check, hidden ones too
    return gradescope_results(
        report,
        numbers=check_numbers(whole),
        summaries=check_summaries(str(report.get("assignment", ""))),
        execution_time=run.seconds,
    )
