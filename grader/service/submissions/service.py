"""Submitting: an upload the intake accepted becomes an immutable submission, its files stored, its row
and its grading job committed together by the caller's one transaction."""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from grader.intake.uploads import Submission as Upload
from grader.service.assignments.late_policy import check_may_hand_in
from grader.service.assignments.models import Assignment, Extension
from grader.service.courses.models import Membership, Role
from grader.service.db import utcnow
from grader.service.errors import Conflict, LimitReached, NotFound, TooSoon
from grader.service.grading import queue
from grader.service.submissions.models import Source, Submission, SubmissionFile
from grader.service.submissions.storage import FileStore


def due_for(session: Session, assignment: Assignment, student_id: str) -> datetime:
    """The student's due date: their extension's, or the assignment's."""
    extension = session.scalar(
        select(Extension).where(Extension.assignment_id == assignment.id, Extension.user_id == student_id)
    )
    return extension.due_at if extension is not None else assignment.due_at


def submit(
    session: Session,
    store: FileStore,
    *,
    assignment: Assignment,
    student_id: str,
    upload: Upload,
    caller: str,
    submitted_by_id: str | None,
    source: Source,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> tuple[Submission, bool]:
    """The submission and whether it is new (False: the same caller sent the same Idempotency-Key
    before, and gets that submission again). Refusals (NotFound, LimitReached, TooSoon) come before
    anything is stored."""
    now = now or utcnow()
    if idempotency_key is not None and (earlier := _sent_before(session, caller, idempotency_key)):
        return _same_hand_in(earlier, assignment, student_id), False
    _check_may_submit(session, assignment, student_id, now)
    submission = Submission(
        assignment_id=assignment.id,
        student_id=student_id,
        submitted_by_id=submitted_by_id,
        caller=caller,
        idempotency_key=idempotency_key,
        source=source,
        late=now > due_for(session, assignment, student_id),
        created_at=now,
    )
    session.add(submission)
    try:
        session.flush()
    except IntegrityError:
        # The same key in a request at the same moment (a retry, a double click) committed first.
        session.rollback()
        if idempotency_key is None or (earlier := _sent_before(session, caller, idempotency_key)) is None:
            raise
        return _same_hand_in(earlier, assignment, student_id), False
    for name, content in sorted(upload.files.items()):
        sha256 = store.put(content)  # on disk before the row that names it commits
        origin = upload.origins.get(name, name)
        session.add(
            SubmissionFile(
                submission_id=submission.id, name=name, origin=origin, sha256=sha256, size=len(content)
            )
        )
    queue.enqueue(session, submission_id=submission.id)
    session.flush()
    return submission, True


def _same_hand_in(earlier: Submission, assignment: Assignment, student_id: str) -> Submission:
    """The earlier submission of a retry; a key used before for another student or assignment is a
    Conflict (the new work would be silently dropped otherwise)."""
    if (earlier.assignment_id, earlier.student_id) != (assignment.id, student_id):
        raise Conflict("this Idempotency-Key was used for another submission; use a new key for each hand-in")
    return earlier


def _sent_before(session: Session, caller: str, idempotency_key: str) -> Submission | None:
    return session.scalar(
        select(Submission).where(Submission.caller == caller, Submission.idempotency_key == idempotency_key)
    )


def _check_may_submit(session: Session, assignment: Assignment, student_id: str, now: datetime) -> None:
    member = session.scalar(
        select(Membership).where(
            Membership.course_id == assignment.course_id, Membership.user_id == student_id
        )
    )
    if member is None or member.role != Role.student:
        raise NotFound("no such student in this course")
    check_may_hand_in(assignment, now, due_for(session, assignment, student_id))
    mine = (Submission.assignment_id == assignment.id) & (Submission.student_id == student_id)
    count = session.scalar(select(func.count()).select_from(Submission).where(mine)) or 0
    if assignment.max_submissions is not None and count >= assignment.max_submissions:
        raise LimitReached(
            f"the limit of {assignment.max_submissions} submissions for {assignment.slug} is reached"
        )
    if assignment.min_interval_seconds and count:
        last = session.scalar(
            select(Submission.created_at).where(mine).order_by(Submission.created_at.desc())
        )
        if last is not None:
            wait = assignment.min_interval_seconds - (now - last).total_seconds()
            if wait > 0:
                raise TooSoon(f"you may submit again in {math.ceil(wait)} s", retry_after=math.ceil(wait))
