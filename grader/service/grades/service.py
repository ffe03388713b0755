"""Final grades: for each student of a course, the submission that counts (best or last) and its score
after the assignment's late policy. Computed when read, from the runs: nothing here is stored, so that a
changed policy or extension changes the grades at once and the history explains every number."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.assignments import get_assignment
from grader.service.accounts.caller import Caller
from grader.service.accounts.models import User
from grader.service.assignments.late_policy import Lateness, final_score, lateness
from grader.service.assignments.models import Assignment, Counting, Extension
from grader.service.assignments.service import authorize_assignment
from grader.service.courses.access import Need
from grader.service.courses.models import Membership, Role
from grader.service.db import utcnow
from grader.service.grading.models import GradingRun
from grader.service.submissions.access import GRADES, authorize_listing
from grader.service.submissions.feedback import shows_hidden_after, students_report
from grader.service.submissions.models import Submission
from grader.service.submissions.views import latest_graded_runs, report_for


@dataclass(frozen=True)
class GradeRow:
    """A student's grade for an assignment (score and final_score None: nothing graded yet)."""

    student_id: str
    email: str
    name: str
    student_number: str | None
    lms_id: str | None
    sis_login_id: str | None
    section: str | None
    first_name: str | None
    last_name: str | None
    submissions: int
    counting_submission_id: str | None
    score: float | None
    max_score: float | None
    late_days: int
    penalty: float  # the fraction taken off the score
    final_score: float | None
    graded_at: datetime | None
    due_at: datetime | None = None  # the student's own (an extension's); not in the API's rows


@dataclass(frozen=True)
class Graded:
    """A submission with its latest graded run: what the late policy and the counting rule weigh."""

    submission_id: str
    created_at: datetime
    score: float
    max_score: float
    graded_at: datetime


@cache
def catalog_max_score(catalog: str) -> float:
    """The points a catalog awards in all (the same for every seed)."""
    return float(sum(check.points for check in get_assignment(catalog).build_checks(0)))


def grade_rows(
    session: Session,
    assignment: Assignment,
    *,
    student_ids: Collection[str] | None = None,
    score_of: Callable[[GradingRun, str], tuple[float, float]] | None = None,
) -> list[GradeRow]:
    """One row per student of the course (or of `student_ids`), by name. `score_of(run, student_id)`
    replaces a run's stored score (a student's own view, without the hidden checks not yet shown).
    Four queries, whatever the number of students."""
    students = _students(session, assignment.course_id, student_ids)
    ids = [member.user_id for member, _ in students]
    dues = _due_dates(session, assignment, ids)
    submissions = list(
        session.scalars(
            select(Submission).where(
                Submission.assignment_id == assignment.id, Submission.student_id.in_(ids)
            )
        )
    )
    runs = latest_graded_runs(
        session, [submission.id for submission in submissions], with_reports=score_of is not None
    )
    counted: dict[str, int] = {}
    graded: dict[str, list[Graded]] = {}
    for submission in submissions:
        counted[submission.student_id] = counted.get(submission.student_id, 0) + 1
        run = runs.get(submission.id)
        if run is None or run.score is None or run.max_score is None or run.finished_at is None:
            continue
        score, max_score = score_of(run, submission.student_id) if score_of else (run.score, run.max_score)
        graded.setdefault(submission.student_id, []).append(
            Graded(submission.id, submission.created_at, score, max_score, run.finished_at)
        )
    due_default = assignment.due_at
    return [
        _row(
            assignment,
            member,
            user,
            counted.get(user.id, 0),
            graded.get(user.id, []),
            dues.get(user.id, due_default),
        )
        for member, user in students
    ]


def own_rows(session: Session, user: User, assignments: Sequence[Assignment]) -> dict[str, GradeRow]:
    """A student's own row of each assignment (of courses they are a student of), with the scores they
    see: what grades_for gives them, for many assignments in four queries (their home page)."""
    ids = [assignment.id for assignment in assignments]
    members = {
        member.course_id: member
        for member in session.scalars(
            select(Membership).where(
                Membership.user_id == user.id,
                Membership.role == Role.student,
                Membership.course_id.in_({assignment.course_id for assignment in assignments}),
            )
        )
    }
    dues = {
        extension.assignment_id: extension.due_at
        for extension in session.scalars(
            select(Extension).where(Extension.user_id == user.id, Extension.assignment_id.in_(ids))
        )
    }
    submissions = list(
        session.scalars(
            select(Submission).where(Submission.student_id == user.id, Submission.assignment_id.in_(ids))
        )
    )
    runs = latest_graded_runs(session, [submission.id for submission in submissions])
    now = utcnow()
    counted: dict[str, int] = {}
    graded: dict[str, list[Graded]] = {}
    by_id = {assignment.id: assignment for assignment in assignments}
    for submission in submissions:
        counted[submission.assignment_id] = counted.get(submission.assignment_id, 0) + 1
        run = runs.get(submission.id)
        if run is None or run.score is None or run.max_score is None or run.finished_at is None:
            continue
        assignment = by_id[submission.assignment_id]
        due = dues.get(assignment.id, assignment.due_at)
        show = shows_hidden_after(assignment, due_at=due, now=now)
        seen = students_report(json.loads(run.report or "{}"), show_hidden=show)
        graded.setdefault(assignment.id, []).append(
            Graded(submission.id, submission.created_at, seen["score"], seen["max_score"], run.finished_at)
        )
    return {
        assignment.id: _row(
            assignment,
            members[assignment.course_id],
            user,
            counted.get(assignment.id, 0),
            graded.get(assignment.id, []),
            dues.get(assignment.id, assignment.due_at),
        )
        for assignment in assignments
        if assignment.course_id in members
    }


def _students(
    session: Session, course_id: str, student_ids: Collection[str] | None
) -> list[tuple[Membership, User]]:
    query = (
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.course_id == course_id, Membership.role == Role.student)
        .order_by(User.name, User.email_key)
    )
    if student_ids is not None:
        query = query.where(Membership.user_id.in_(list(student_ids)))
    return [(member, user) for member, user in session.execute(query)]


def _due_dates(session: Session, assignment: Assignment, student_ids: list[str]) -> dict[str, datetime]:
    extensions = select(Extension).where(
        Extension.assignment_id == assignment.id, Extension.user_id.in_(student_ids)
    )
    return {extension.user_id: extension.due_at for extension in session.scalars(extensions)}


def _row(
    assignment: Assignment,
    member: Membership,
    user: User,
    submissions: int,
    graded: list[Graded],
    due_at: datetime,
) -> GradeRow:
    weighed = [(attempt, lateness(assignment, attempt.created_at, due_at)) for attempt in graded]
    candidates = [(attempt, late) for attempt, late in weighed if late.counts]
    counting = _counting(assignment, candidates)
    ungraded = GradeRow(
        student_id=user.id,
        email=user.email,
        name=user.name,
        student_number=member.student_number,
        lms_id=member.lms_id,
        sis_login_id=member.sis_login_id,
        section=member.section,
        first_name=member.first_name,
        last_name=member.last_name,
        submissions=submissions,
        counting_submission_id=None,
        score=None,
        max_score=catalog_max_score(assignment.catalog),
        late_days=0,
        penalty=0.0,
        final_score=None,
        graded_at=None,
        due_at=due_at,
    )
    if counting is None:
        return ungraded
    attempt, late = counting
    return replace(
        ungraded,
        counting_submission_id=attempt.submission_id,
        score=attempt.score,
        max_score=attempt.max_score,
        late_days=late.late_days,
        penalty=late.penalty,
        final_score=final_score(attempt.score, late.penalty),
        graded_at=attempt.graded_at,
    )


def _counting(
    assignment: Assignment, candidates: list[tuple[Graded, Lateness]]
) -> tuple[Graded, Lateness] | None:
    """The attempt that counts: the latest submitted, or the best after its penalty (the earlier of
    equals: a later attempt that scores no better changes nothing)."""
    if not candidates:
        return None
    in_order = sorted(candidates, key=lambda pair: pair[0].created_at)
    if assignment.counting is Counting.last:
        return in_order[-1]
    return max(in_order, key=lambda pair: final_score(pair[0].score, pair[1].penalty))


def grades_for(
    session: Session, caller: Caller, assignment_id: str, *, everyone: bool = False
) -> tuple[Assignment, list[GradeRow]]:
    """The rows the caller may read: every student's (staff, tokens with grades:read) or a student's
    own, with the scores they see; `everyone` refuses students (a whole-course export)."""
    if everyone:
        assignment = authorize_assignment(session, caller, assignment_id, Need.staff, scope=GRADES)
        return assignment, grade_rows(session, assignment)
    assignment, only = authorize_listing(session, caller, assignment_id, scope=GRADES)
    if only is None:
        return assignment, grade_rows(session, assignment)

    def as_they_see_it(run: GradingRun, student_id: str) -> tuple[float, float]:
        seen = report_for(session, run, assignment, student_id, as_staff=False)
        return float(seen["score"]), float(seen["max_score"])

    return assignment, grade_rows(session, assignment, student_ids=[only], score_of=as_they_see_it)
