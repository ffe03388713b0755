"""Who may submit, list and see submissions: a student their own (while in the course); the course's
staff, and its API tokens with the route's scope, everyone's. To anyone else a submission does not exist
(NotFound)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from grader.service.accounts.caller import Caller
from grader.service.accounts.service import email_key
from grader.service.assignments.models import Assignment
from grader.service.assignments.service import authorize_assignment, course_student
from grader.service.courses.access import Need, authorize_course, membership
from grader.service.courses.models import Role
from grader.service.errors import Forbidden, InvalidInput, NotFound
from grader.service.submissions.models import Submission

WRITE, READ, GRADES = "submissions:write", "submissions:read", "grades:read"


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
    session: Session,
    caller: Caller,
    submission_id: str,
    *,
    scope: str | None,
    staff_only: bool = False,
    staff_reason: str = "only the course's staff may see grading runs (they carry the hidden seeds)",
) -> Seen:
    """`scope` None: closed to API tokens; `staff_only`: closed to the submission's own student, with
    `staff_reason` as the answer."""
    submission = session.get(Submission, submission_id)
    if submission is None:
        raise NotFound("no such submission")
    assignment = session.get(Assignment, submission.assignment_id)
    assert assignment is not None
    if not caller.is_admin and is_own(session, caller, submission, assignment):
        if staff_only:
            raise Forbidden(staff_reason)
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


def authorize_submitting(
    session: Session, caller: Caller, assignment_id: str, student: str | None
) -> tuple[Assignment, str]:
    """The assignment and the id of the student a new submission is for: the caller, a student of the
    course; or, for staff and tokens with submissions:write, the student whose email `student` gives."""
    if caller.token is not None and not caller.has_scope(WRITE):
        authorize_assignment(session, caller, assignment_id, Need.staff, scope=WRITE)  # 404 or 403
    own_email = caller.user.email_key if caller.user is not None else None
    if student is None or (own_email is not None and email_key(student) == own_email):
        if caller.user is None:
            raise InvalidInput("an API token submits on a student's behalf: give their email in 'student'")
        assignment = authorize_assignment(session, caller, assignment_id, Need.view)
        member = membership(session, assignment.course_id, caller.user.id)
        if member is None or member.role is not Role.student:
            raise InvalidInput("you are not a student of this course: give the student's email in 'student'")
        return assignment, caller.user.id
    try:
        assignment = authorize_assignment(session, caller, assignment_id, Need.staff, scope=WRITE)
    except Forbidden as exc:
        if caller.token is not None:
            raise
        raise Forbidden("students submit their own work only; leave out 'student'") from exc
    return assignment, course_student(session, assignment.course_id, student).id


def authorize_listing(
    session: Session, caller: Caller, assignment_id: str, *, scope: str = READ
) -> tuple[Assignment, str | None]:
    """The assignment, and whose submissions (or grades) the caller may list: everyone's (None: staff,
    and tokens with `scope`) or, for a student, their own (their id)."""
    try:
        return authorize_assignment(session, caller, assignment_id, Need.staff, scope=scope), None
    except Forbidden:
        if caller.token is not None:
            raise
    assignment = authorize_assignment(session, caller, assignment_id, Need.view)
    assert caller.user is not None
    return assignment, caller.user.id


def may_see_scores(caller: Caller) -> bool:
    """Scores are grades: an API token needs grades:read for them, even in a submission's status."""
    return caller.token is None or caller.has_scope(GRADES)
