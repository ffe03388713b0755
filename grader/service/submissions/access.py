"""Who may see a submission: its student (while in the course) and the course's staff, including its
API tokens with the route's scope. To anyone else it does not exist (NotFound)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from grader.service.accounts.caller import Caller
from grader.service.assignments.models import Assignment
from grader.service.courses.access import Need, authorize_course, membership
from grader.service.errors import Forbidden, NotFound
from grader.service.submissions.models import Submission


@dataclass(frozen=True)
class Seen:
    """A submission, its assignment, and whether the caller sees it as staff (everything) or as its
    student (what the assignment lets students see)."""

    submission: Submission
    assignment: Assignment
    as_staff: bool


def is_own(session: Session, caller: Caller, submission: Submission, assignment: Assignment) -> bool:
    user = caller.user
    return (
        user is not None
        and user.id == submission.student_id
        and membership(session, assignment.course_id, user.id) is not None
    )


def authorize_submission(
    session: Session, caller: Caller, submission_id: str, *, scope: str, staff_only: bool = False
) -> Seen:
    submission = session.get(Submission, submission_id)
    if submission is None:
        raise NotFound("no such submission")
    assignment = session.get(Assignment, submission.assignment_id)
    assert assignment is not None
    if not caller.is_admin and is_own(session, caller, submission, assignment):
        if staff_only:
            raise Forbidden("only the course's staff may see grading runs (they carry the hidden seeds)")
        return Seen(submission, assignment, as_staff=False)
    try:
        authorize_course(session, caller, assignment.course_id, Need.staff, scope=scope)
    except NotFound as exc:
        raise NotFound("no such submission") from exc
    except Forbidden:
        if caller.token is None:  # a student of the course, looking at someone else's work
            raise NotFound("no such submission") from None
        raise
    return Seen(submission, assignment, as_staff=True)
