"""The live status of a submission on both databases: its place in the queue counts only the jobs a worker
claims first (fresh submissions before regrades), a running one tells the checks that have run by
question (a student sees hidden ones by name only as the assignment allows), a graded one its score;
in a few queries whatever the queue's length."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from grader.service.assignments.models import Assignment, HiddenResults
from grader.service.db import utcnow
from grader.service.grading import queue
from grader.service.grading.live import LiveStatus, catalog_outline, live_status
from grader.service.grading.models import PRIORITY_REGRADE, GradingJob, JobStatus
from grader.service.grading.regrades import regrade_submission
from grader.service.submissions.models import Submission
from tests.grader.service.factories import course_with_student, submission

LEASE = timedelta(seconds=60)
QUESTIONS, OUTLINE = catalog_outline("cs231n-a2-fc")
HIDDEN = [check for check in OUTLINE if check.visibility == "hidden"]


def status(
    sessions: sessionmaker[Session], submission_id: str, *, as_staff: bool = False, with_scores: bool = True
) -> LiveStatus:
    with sessions() as session:
        made = session.get(Submission, submission_id)
        assert made is not None
        return live_status(session, made, as_staff=as_staff, with_scores=with_scores)


def submissions(sessions: sessionmaker[Session], count: int, *, start: datetime) -> list[str]:
    """`count` submissions of one student, queued a second apart from `start` on."""
    with sessions.begin() as session:
        assignment, student = course_with_student(session)
        made = [submission(session, assignment, student).id for _ in range(count)]
        for n, submission_id in enumerate(made):
            job = queue.enqueue(session, submission_id=submission_id)
            job.available_at = start + timedelta(seconds=n)
        return made


def claim(sessions: sessionmaker[Session], worker: str = "w") -> queue.Claim:
    with sessions.begin() as session:
        held = queue.claim(session, worker=worker, lease=LEASE)
    assert held is not None
    return held


def record(sessions: sessionmaker[Session], held: queue.Claim, checks: list[str], probes: int = 10) -> None:
    with sessions.begin() as session:
        note = json.dumps({"checks": checks, "probes": [probes, 51]})
        assert queue.record_progress(session, held, note)


def test_the_place_in_the_queue_counts_the_jobs_claimed_first(sessions: sessionmaker[Session]) -> None:
    start = utcnow() - timedelta(minutes=5)
    first, second, third = submissions(sessions, 3, start=start)
    with sessions.begin() as session:  # the first is graded, and a regrade of it waits (older than all)
        job = session.scalars(select(GradingJob).where(GradingJob.submission_id == first)).one()
        job.status = JobStatus.done
        made = session.get(Submission, first)
        assert made is not None
        regrade = regrade_submission(session, made)
        regrade.available_at = start - timedelta(minutes=1)
    assert regrade.priority == PRIORITY_REGRADE

    places = [(s.status, s.queue_position) for s in (status(sessions, i) for i in (second, third, first))]
    assert places == [("queued", 1), ("queued", 2), ("queued", 3)]  # the old regrade after fresh work

    held = claim(sessions)
    assert held.submission_id == second
    assert (status(sessions, second).status, status(sessions, second).queue_position) == ("running", None)
    assert [status(sessions, i).queue_position for i in (third, first)] == [
        1,
        2,
    ]  # a running job is ahead of none
    assert status(sessions, third, as_staff=True).queue_position == 1


def test_a_submission_waiting_out_a_retry_keeps_its_place_by_the_claim_order(
    sessions: sessionmaker[Session],
) -> None:
    start = utcnow() - timedelta(minutes=5)
    failing, waiting = submissions(sessions, 2, start=start)
    held = claim(sessions)
    with sessions.begin() as session:
        assert queue.fail(session, held, error="the sandbox could not run") == JobStatus.queued
    # Available again only in RETRY_DELAY: later than the other, which comes first now.
    assert [status(sessions, i).queue_position for i in (waiting, failing)] == [1, 2]


def test_a_running_grading_tells_the_checks_that_have_run_by_question(
    sessions: sessionmaker[Session],
) -> None:
    (submission_id,) = submissions(sessions, 1, start=utcnow())
    held = claim(sessions)
    assert status(sessions, submission_id).questions[0].done == 0  # claimed, nothing recorded yet
    first_question = [check.id for check in OUTLINE if check.question == QUESTIONS[0]]
    record(sessions, held, first_question[:5])

    seen = status(sessions, submission_id, as_staff=True)

    assert (seen.status, seen.probes_done, seen.probes_total) == ("running", 10, 51)
    assert [q.name for q in seen.questions] == list(QUESTIONS)
    assert [(q.done, q.total) for q in seen.questions] == [
        (5 if name == QUESTIONS[0] else 0, sum(1 for c in OUTLINE if c.question == name))
        for name in QUESTIONS
    ]
    assert [c.id for c in seen.questions[0].checks if c.done] == first_question[:5]
    payload = seen.to_dict()
    assert payload["checks"] == {"done": 5, "total": len(OUTLINE)} and payload["final"] is False
    assert json.loads(json.dumps(payload)) == payload  # the JSON of an event as it is


def test_a_student_sees_hidden_checks_by_name_only_as_the_assignment_allows(
    sessions: sessionmaker[Session],
) -> None:
    (submission_id,) = submissions(sessions, 1, start=utcnow())
    held = claim(sessions)
    record(sessions, held, [check.id for check in OUTLINE[:10]])
    hidden_done = sum(1 for check in OUTLINE[:10] if check.visibility == "hidden")
    assert hidden_done > 0 and HIDDEN

    students = json.dumps(status(sessions, submission_id).to_dict())
    for check in HIDDEN:  # neither their ids nor their summaries (which tell their inputs)
        assert check.id not in students and check.summary not in students
    seen = status(sessions, submission_id)
    assert sum(q.done for q in seen.questions) == 10  # counted, nameless
    assert sum(len(q.checks) for q in seen.questions) == len(OUTLINE) - len(HIDDEN)
    assert all(
        check.id in json.dumps(status(sessions, submission_id, as_staff=True).to_dict()) for check in HIDDEN
    )

    with sessions.begin() as session:  # after the due date, hidden results are shown (after_due)
        made = session.get(Submission, submission_id)
        assert made is not None
        assignment = session.get(Assignment, made.assignment_id)
        assert assignment is not None and assignment.hidden_results is HiddenResults.after_due
        assignment.due_at = datetime(2000, 1, 1, tzinfo=UTC)
    assert all(check.id in json.dumps(status(sessions, submission_id).to_dict()) for check in HIDDEN)


def test_a_graded_submission_tells_its_score_as_the_caller_may_see_it(
    sessions: sessionmaker[Session],
) -> None:
    (submission_id,) = submissions(sessions, 1, start=utcnow())
    held = claim(sessions)
    report = {
        "seed": held.seed,
        "score": 3.0,
        "max_score": 5.0,
        "questions": [{"name": QUESTIONS[0], "score": 3.0, "max_score": 5.0}],
        "checks": [
            {"id": "a", "target": "layers.a", "question": QUESTIONS[0], "visibility": "visible"}
            | {"status": "passed", "score": 2.0, "max_score": 2.0, "message": ""},
            {"id": "b", "target": "layers.b", "question": QUESTIONS[0], "visibility": "hidden"}
            | {"status": "failed", "score": 1.0, "max_score": 3.0, "message": ""},
        ],
    }
    with sessions.begin() as session:
        assert queue.complete(
            session, held, report=json.dumps(report), score=3.0, max_score=5.0, sandbox_image=None
        )

    staff, student = status(sessions, submission_id, as_staff=True), status(sessions, submission_id)
    assert (staff.status, staff.score, staff.max_score, staff.questions) == ("graded", 3.0, 5.0, ())
    assert (student.status, student.score, student.max_score) == ("graded", 2.0, 2.0)  # the visible check
    assert student.final and student.graded_at is not None and student.to_dict()["final"] is True
    no_scores = status(sessions, submission_id, with_scores=False)
    assert (no_scores.score, no_scores.max_score) == (None, None)

    with sessions.begin() as session:  # a regrade queued: queued again, the last score still told
        made = session.get(Submission, submission_id)
        assert made is not None
        regrade_submission(session, made)
    again = status(sessions, submission_id, as_staff=True)
    assert (again.status, again.queue_position, again.score, again.final) == ("queued", 1, 3.0, False)


@contextmanager
def counted(sessions: sessionmaker[Session]) -> Iterator[list[str]]:
    engine = sessions.kw["bind"]
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_few_queries_whatever_the_queues_length_or_the_checks_done(sessions: sessionmaker[Session]) -> None:
    start = utcnow() - timedelta(hours=1)
    few = submissions(sessions, 3, start=start)
    many = submissions(sessions, 30, start=start + timedelta(minutes=1))
    held = claim(sessions)
    record(sessions, held, [check.id for check in OUTLINE])

    def queries(submission_id: str, as_staff: bool) -> int:
        with counted(sessions) as statements:
            status(sessions, submission_id, as_staff=as_staff)
        return len(statements)

    for as_staff in (True, False):
        assert queries(few[1], as_staff) == queries(many[-1], as_staff) <= 6  # no job ahead, or 30
        assert queries(held.submission_id, as_staff) <= 6  # every check has run
