"""The schema: every migration applies from empty on both databases, and the models match the last one."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError, StatementError

from grader.service import models
from grader.service.accounts.service import create_user
from grader.service.assignments.models import Assignment
from grader.service.courses.models import Course
from grader.service.db import make_engine, session_factory
from grader.service.errors import Conflict
from grader.service.grading import queue
from grader.service.migrate import alembic_config, current_revision, upgrade
from tests.grader.service.factories import course_with_student, submission

HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def test_every_migration_applies_from_empty_and_the_models_match_the_last(database_url: str) -> None:
    assert inspect(make_engine(database_url)).get_table_names() == []

    upgrade(database_url)

    assert current_revision(database_url) == HEAD
    engine = make_engine(database_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), models.Base.metadata)
    assert differences == []
    assert set(inspect(engine).get_table_names()) == {*models.Base.metadata.tables, "alembic_version"}
    engine.dispose()


def test_an_upgraded_database_upgrades_again_to_the_same(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)
    assert current_revision(database_url) == HEAD


def test_the_grading_progress_goes_with_a_downgrade_to_0002_and_comes_back(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    with session_factory(engine).begin() as session:  # a run, which the downgrade keeps (not its progress)
        assignment, student = course_with_student(session)
        queue.enqueue(session, submission_id=submission(session, assignment, student).id)
        claim = queue.claim(session, worker="w", lease=timedelta(seconds=30))
        assert claim is not None and queue.record_progress(session, claim, "{}")

    def columns() -> set[str]:
        return {column["name"] for column in inspect(engine).get_columns("grading_runs")}

    command.downgrade(alembic_config(database_url), "0002")
    assert "progress" not in columns() and current_revision(database_url) == "0002"
    upgrade(database_url)
    assert "progress" in columns() and current_revision(database_url) == HEAD
    with engine.connect() as connection:
        assert connection.execute(text("SELECT id, progress FROM grading_runs")).all() == [
            (claim.run_id, None)
        ]
    engine.dispose()


def test_the_control_a_model_the_migrations_lack_is_seen(database_url: str) -> None:
    """compare_metadata does find a difference: a table the migrations do not create."""
    upgrade(database_url)
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE extensions"))
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), models.Base.metadata)
    assert differences[0][0] == "add_table" and differences[0][1].name == "extensions"
    engine.dispose()


def test_times_come_back_as_the_same_aware_instant_and_naive_ones_are_refused(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    due = datetime(2026, 12, 24, 23, 59, tzinfo=timezone(timedelta(hours=-8)))
    with session_factory(engine).begin() as session:
        course = Course(slug="cs231n", title="CS231n")
        session.add(course)
        session.flush()
        session.add(
            Assignment(course_id=course.id, slug="a2", title="A2", catalog="cs231n-a2-fc", due_at=due)
        )
    with session_factory(engine)() as session:
        stored = session.query(Assignment).one()
        assert stored.due_at == due and stored.due_at.tzinfo is not None
        assert stored.due_at.utcoffset() == timedelta(0) or stored.due_at.astimezone(UTC) == due
    with pytest.raises(StatementError, match="naive datetime"), session_factory(engine).begin() as session:
        naive = Assignment(
            course_id=course.id, slug="a3", title="A3", catalog="x", due_at=datetime(2026, 1, 1)
        )
        session.add(naive)
    engine.dispose()


def test_an_email_is_unique_in_any_case_and_the_database_holds_it_so(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    with session_factory(engine).begin() as session:
        create_user(session, email="Ada@Example.org", name="Ada", password="long enough")
    with pytest.raises(Conflict, match="exists already"), session_factory(engine).begin() as session:
        create_user(session, email="ada@EXAMPLE.org", name="Ada again", password="long enough")
    with pytest.raises(IntegrityError), engine.begin() as connection:  # not only the service's check
        connection.execute(
            text(
                "INSERT INTO users (id, email, email_key, name, is_admin, created_at) "
                "VALUES ('x', 'ADA@example.org', 'ada@example.org', 'x', false, CURRENT_TIMESTAMP)"
            )
        )
    engine.dispose()


def test_sqlite_runs_with_wal_and_foreign_keys(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/grader.db"
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO memberships (id, course_id, user_id, role, created_at) "
                "VALUES ('m', 'no-such-course', 'no-such-user', 'student', CURRENT_TIMESTAMP)"
            )
        )
    engine.dispose()


def test_upgrades_at_once_on_threads_and_processes_do_not_break_each_other(database_url: str) -> None:
    """`grader serve` upgrades from the API's start and from its workers' (threads of one process), and
    several `grader worker`s may start at once (processes)."""
    command = [sys.executable, "-c", f"from grader.service.migrate import upgrade; upgrade({database_url!r})"]
    processes = [subprocess.Popen(command, stderr=subprocess.PIPE) for _ in range(2)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: upgrade(database_url), range(4)))
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()
    assert current_revision(database_url) is not None
