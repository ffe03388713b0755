"""Submitting on both databases: files stored by hash before the row, the row and its job together,
idempotency, the submission limit, the interval (with its wait), lateness, and refusals that store nothing."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from grader.intake.uploads import Submission as Upload
from grader.service.accounts.models import User
from grader.service.assignments.models import Assignment, Extension, LatePolicy
from grader.service.errors import LateRefused, LimitReached, NotFound, TooSoon
from grader.service.grading.models import GradingJob
from grader.service.submissions.models import Source, Submission, SubmissionFile
from grader.service.submissions.service import submit
from grader.service.submissions.storage import FileStore
from tests.grader.service.factories import course_with_student

DUE = datetime(2099, 1, 1, tzinfo=UTC)  # the factories' due date
UPLOAD = Upload(
    files={"layers.py": b"def relu_forward(x): ...\n", "optim.py": b"def sgd(w, dw, config=None): ...\n"},
    origins={"layers.py": "assignment2/cs231n/layers.py", "optim.py": "assignment2/cs231n/optim.py"},
    ignored=(),
)


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "files")


def setup(sessions: sessionmaker[Session], **limits: object) -> tuple[str, str]:
    with sessions.begin() as session:
        assignment, student = course_with_student(session)
        for name, value in limits.items():
            setattr(assignment, name, value)
        return assignment.id, student.id


def send(
    sessions: sessionmaker[Session],
    store: FileStore,
    ids: tuple[str, str],
    now: datetime,
    key: str | None = None,
    student: str | None = None,
) -> tuple[Submission, bool]:
    with sessions.begin() as session:
        assignment = session.get(Assignment, ids[0])
        assert assignment is not None
        return submit(
            session,
            store,
            assignment=assignment,
            student_id=student or ids[1],
            upload=UPLOAD,
            caller=f"user:{ids[1]}",
            submitted_by_id=ids[1],
            source=Source.api,
            idempotency_key=key,
            now=now,
        )


def count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_submission_stores_its_files_by_hash_and_queues_its_job(
    sessions: sessionmaker[Session], store: FileStore
) -> None:
    ids = setup(sessions)
    made, new = send(sessions, store, ids, DUE - timedelta(days=1))

    assert new and not made.late
    with sessions() as session:
        files = {f.name: f for f in session.scalars(select(SubmissionFile))}
        jobs = list(session.scalars(select(GradingJob)))
    assert set(files) == set(UPLOAD.files)
    for name, content in UPLOAD.files.items():
        assert files[name].sha256 == hashlib.sha256(content).hexdigest() and files[name].size == len(content)
        assert store.get(files[name].sha256) == content
    assert files["layers.py"].origin == "assignment2/cs231n/layers.py"
    assert [(job.submission_id, job.status) for job in jobs] == [(made.id, "queued")]


def test_the_same_idempotency_key_gives_the_same_submission(
    sessions: sessionmaker[Session], store: FileStore
) -> None:
    ids = setup(sessions)
    first, new_first = send(sessions, store, ids, DUE, key="retry-1")
    again, new_again = send(sessions, store, ids, DUE, key="retry-1")
    other, new_other = send(sessions, store, ids, DUE, key="retry-2")

    assert (new_first, new_again, new_other) == (True, False, True)
    assert again.id == first.id != other.id
    assert count(sessions, Submission) == 2 and count(sessions, GradingJob) == 2


def test_the_limit_and_the_interval_refuse_with_the_wait(
    sessions: sessionmaker[Session], store: FileStore
) -> None:
    ids = setup(sessions, max_submissions=2, min_interval_seconds=60)
    start = DUE - timedelta(hours=1)
    send(sessions, store, ids, start)

    with pytest.raises(TooSoon) as too_soon:
        send(sessions, store, ids, start + timedelta(seconds=45))
    assert too_soon.value.retry_after == 15 and too_soon.value.status_code == 429
    send(sessions, store, ids, start + timedelta(seconds=61))
    with pytest.raises(LimitReached, match="limit of 2"):
        send(sessions, store, ids, start + timedelta(minutes=50))
    assert count(sessions, Submission) == 2 and count(sessions, GradingJob) == 2


def test_late_is_after_the_students_own_due_date(sessions: sessionmaker[Session], store: FileStore) -> None:
    ids = setup(sessions, late_policy=LatePolicy.per_day)
    late, _ = send(sessions, store, ids, DUE + timedelta(minutes=1))
    with sessions.begin() as session:
        session.add(Extension(assignment_id=ids[0], user_id=ids[1], due_at=DUE + timedelta(days=2)))
    extended, _ = send(sessions, store, ids, DUE + timedelta(days=1))

    assert late.late and not extended.late


def test_late_work_is_refused_where_the_policy_would_never_count_it_and_nothing_is_stored(
    sessions: sessionmaker[Session], store: FileStore
) -> None:
    ids = setup(sessions)  # late_policy none: the default
    with pytest.raises(LateRefused, match="takes no late submissions; the course's staff can grant"):
        send(sessions, store, ids, DUE + timedelta(seconds=1))
    capped = setup(sessions, late_policy=LatePolicy.per_day, penalty_per_day=0.1, max_late_days=2)
    send(sessions, store, capped, DUE + timedelta(days=2))  # the second started day: taken
    with pytest.raises(LateRefused, match=r"3 days after the due date .* past the 2 late days"):
        send(sessions, store, capped, DUE + timedelta(days=2, seconds=1))
    assert count(sessions, Submission) == 1 and count(sessions, GradingJob) == 1
    with sessions.begin() as session:  # an extension moves the student's own due date
        session.add(Extension(assignment_id=ids[0], user_id=ids[1], due_at=DUE + timedelta(days=1)))
    made, _ = send(sessions, store, ids, DUE + timedelta(hours=23))
    assert not made.late


def test_someone_not_a_student_of_the_course_is_refused_and_nothing_is_stored(
    sessions: sessionmaker[Session], store: FileStore
) -> None:
    ids = setup(sessions)
    with sessions.begin() as session:
        stranger = User(email="x@example.org", email_key="x@example.org", name="Stranger")
        session.add(stranger)
        session.flush()
        stranger_id = stranger.id

    with pytest.raises(NotFound):
        send(sessions, store, ids, DUE, student=stranger_id)
    assert count(sessions, Submission) == 0 and count(sessions, GradingJob) == 0
    assert not store.root.exists()


def test_the_store_writes_once_and_never_serves_damaged_bytes(store: FileStore) -> None:
    sha = store.put(b"content")
    assert store.put(b"content") == sha and store.get(sha) == b"content"
    assert [path.name for path in store.root.rglob("*") if path.is_file()] == [sha]  # no temporary left
    store.path(sha).write_bytes(b"tampered")
    with pytest.raises(OSError, match="damaged"):
        store.get(sha)
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")
