"""The grading queue on both databases: a job is held by one worker at a time, a worker that lost its
lease stores nothing, a dead worker's job is taken again, and infrastructure failures award nothing."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grader.service.db import utcnow
from grader.service.grading import queue
from grader.service.grading.models import PRIORITY_REGRADE, GradingJob, GradingRun, JobStatus, RunStatus
from tests.grader.service.factories import course_with_student, submission

LEASE = timedelta(seconds=30)


def queued_jobs(sessions: sessionmaker[Session], count: int) -> list[str]:
    with sessions.begin() as session:
        assignment, student = course_with_student(session)
        return [
            queue.enqueue(session, submission_id=submission(session, assignment, student).id).id
            for _ in range(count)
        ]


def claim(
    sessions: sessionmaker[Session], worker: str, now: datetime | None = None, lease: timedelta = LEASE
) -> queue.Claim | None:
    with sessions.begin() as session:
        return queue.claim(session, worker=worker, lease=lease, now=now)


def complete(sessions: sessionmaker[Session], held: queue.Claim, now: datetime | None = None) -> bool:
    with sessions.begin() as session:
        return queue.complete(
            session,
            held,
            report="{}",
            score=1.0,
            max_score=2.0,
            sandbox_image="img",
            now=now,
        )


def runs(sessions: sessionmaker[Session]) -> list[GradingRun]:
    with sessions() as session:
        return list(session.scalars(select(GradingRun).order_by(GradingRun.attempt)))


def test_a_claimed_job_is_graded_once(sessions: sessionmaker[Session]) -> None:
    (job_id,) = queued_jobs(sessions, 1)

    held = claim(sessions, "w1")
    assert held is not None and (held.job_id, held.attempt) == (job_id, 1)
    assert claim(sessions, "w2") is None  # held: nobody else gets it
    assert complete(sessions, held)
    assert not complete(sessions, held)  # stored at most once

    (run,) = runs(sessions)
    assert (run.status, run.score, run.max_score, run.seed) == (RunStatus.graded, 1.0, 2.0, held.seed)
    with sessions() as session:
        assert session.get(GradingJob, job_id).status == JobStatus.done  # type: ignore[union-attr]
    assert claim(sessions, "w3") is None


def test_a_dead_workers_job_is_taken_again_and_its_late_grade_is_refused(
    sessions: sessionmaker[Session],
) -> None:
    queued_jobs(sessions, 1)
    start = utcnow()
    first = claim(sessions, "dies", now=start, lease=timedelta(seconds=5))
    assert first is not None
    assert claim(sessions, "other", now=start + timedelta(seconds=4)) is None  # the lease still holds

    second = claim(sessions, "other", now=start + timedelta(seconds=6))
    assert second is not None and (second.job_id, second.attempt) == (first.job_id, 2)
    assert not complete(sessions, first, now=start + timedelta(seconds=7))  # lost its lease: nothing stored
    assert complete(sessions, second, now=start + timedelta(seconds=8))

    statuses = [(run.worker, run.status, run.score) for run in runs(sessions)]
    assert statuses == [("dies", RunStatus.abandoned, None), ("other", RunStatus.graded, 1.0)]
    assert runs(sessions)[0].seconds == 6.0  # abandoned when the next claim took the job


def test_heartbeats_keep_the_lease_and_a_lost_one_says_so(sessions: sessionmaker[Session]) -> None:
    queued_jobs(sessions, 1)
    start = utcnow()
    held = claim(sessions, "w1", now=start, lease=timedelta(seconds=10))
    assert held is not None
    with sessions.begin() as session:
        assert queue.heartbeat(session, held, lease=timedelta(seconds=10), now=start + timedelta(seconds=8))
    assert claim(sessions, "w2", now=start + timedelta(seconds=12)) is None  # extended to 18 s
    taken = claim(sessions, "w2", now=start + timedelta(seconds=19))
    assert taken is not None
    with sessions.begin() as session:
        assert not queue.heartbeat(session, held, lease=LEASE, now=start + timedelta(seconds=20))


def test_three_infrastructure_failures_fail_the_job_and_award_nothing(
    sessions: sessionmaker[Session],
) -> None:
    (job_id,) = queued_jobs(sessions, 1)
    now = utcnow()
    outcomes = []
    for _ in range(queue.MAX_INFRASTRUCTURE_FAILURES):
        held = claim(sessions, "w", now=now)
        assert held is not None
        with sessions.begin() as session:
            outcomes.append(queue.fail(session, held, error="the sandbox could not run", now=now))
        now += queue.RETRY_DELAY + timedelta(seconds=1)

    assert outcomes == [JobStatus.queued, JobStatus.queued, JobStatus.failed]
    assert [(run.status, run.score) for run in runs(sessions)] == [(RunStatus.failed, None)] * 3
    assert claim(sessions, "w", now=now) is None
    with sessions() as session:
        assert session.get(GradingJob, job_id).status == JobStatus.failed  # type: ignore[union-attr]


def test_workers_in_threads_share_the_queue_and_none_grades_a_job_twice(
    sessions: sessionmaker[Session],
) -> None:
    jobs = set(queued_jobs(sessions, 30))
    graded: dict[str, list[str]] = {"a": [], "b": [], "c": []}

    def work(worker: str) -> None:
        while (held := claim(sessions, worker)) is not None:
            if complete(sessions, held):
                graded[worker].append(held.job_id)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in graded]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    everything = [job for done in graded.values() for job in done]
    assert sorted(everything) == sorted(jobs)  # every job graded, none twice
    assert all(run.status == RunStatus.graded for run in runs(sessions)) and len(runs(sessions)) == 30


def test_fresh_submissions_are_claimed_before_older_regrades(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assignment, student = course_with_student(session)
        regrades = [
            queue.enqueue(
                session,
                submission_id=submission(session, assignment, student).id,
                priority=PRIORITY_REGRADE,
            ).id
            for _ in range(3)
        ]
    (fresh,) = queued_jobs(sessions, 1)  # later than every regrade
    order = []
    while (held := claim(sessions, "w", now=utcnow() + timedelta(seconds=1))) is not None:
        order.append(held.job_id)
        assert complete(sessions, held)
    assert order[0] == fresh and sorted(order[1:]) == sorted(regrades)


def progress_of(sessions: sessionmaker[Session]) -> list[tuple[str, str | None]]:
    return [(run.worker, run.progress) for run in runs(sessions)]


def test_progress_is_written_only_while_the_lease_holds(sessions: sessionmaker[Session]) -> None:
    queued_jobs(sessions, 1)
    start = utcnow()
    first = claim(sessions, "dies", now=start, lease=timedelta(seconds=5))
    assert first is not None

    def record(held: queue.Claim, note: str, after: float) -> bool:
        with sessions.begin() as session:
            return queue.record_progress(session, held, note, now=start + timedelta(seconds=after))

    assert record(first, "early", 1)
    assert not record(first, "late", 6)  # the lease expired: nobody took the job yet, still nothing
    second = claim(sessions, "other", now=start + timedelta(seconds=6))
    assert second is not None
    assert not record(first, "stale", 7) and record(second, "mine", 7)
    assert progress_of(sessions) == [("dies", "early"), ("other", "mine")]
    assert complete(sessions, second, now=start + timedelta(seconds=8))
    assert not record(second, "after", 8)  # a finished run's progress stays as it was
    assert progress_of(sessions) == [("dies", "early"), ("other", "mine")]


def test_the_jobs_ahead_are_those_claimed_first(sessions: sessionmaker[Session]) -> None:
    start = utcnow()
    with sessions.begin() as session:
        assignment, student = course_with_student(session)

        def job(priority: int, seconds: float) -> GradingJob:
            made = queue.enqueue(
                session, submission_id=submission(session, assignment, student).id, priority=priority
            )
            made.available_at = start + timedelta(seconds=seconds)
            return made

        old_regrade, fresh, later, retried = job(PRIORITY_REGRADE, 0), job(0, 1), job(0, 2), job(0, 30)
        session.flush()
        ids = [made.id for made in (old_regrade, fresh, later, retried)]

    def ahead(job_id: str, now: datetime) -> int:
        with sessions() as session:
            made = session.get(GradingJob, job_id)
            assert made is not None
            return queue.jobs_ahead(session, made, now=now)

    at = start + timedelta(seconds=3)
    assert [ahead(job_id, at) for job_id in ids] == [3, 0, 1, 2]  # a retry waiting comes before regrades
    held = claim(sessions, "w", now=at)
    assert held is not None and held.job_id == ids[1]
    assert [ahead(job_id, at) for job_id in ids[2:]] == [0, 1]
    assert ahead(ids[0], at) == 2  # the running job is not ahead of anyone
    assert ahead(ids[0], at + LEASE + timedelta(seconds=1)) == 3  # unless its lease expired
