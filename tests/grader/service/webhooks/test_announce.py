"""Announcing grade changes on both databases: one delivery per live webhook for each changed final
grade, nothing for an unchanged one, written in the caller's transaction (a rollback leaves none)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from grader.service.accounts.models import User
from grader.service.assignments.models import Assignment
from grader.service.grades.service import grade_rows
from grader.service.grading import queue
from grader.service.webhooks import service
from grader.service.webhooks.models import AnnouncedGrade, DeliveryStatus, WebhookDelivery
from tests.grader.service.factories import course_with_student, submission
from tests.grader.service.webhooks.conftest import grade_row, webhook_row


def deliveries(session: Session) -> list[dict[str, object]]:
    query = select(WebhookDelivery).order_by(WebhookDelivery.created_at, WebhookDelivery.id)
    return [json.loads(delivery.body) for delivery in session.scalars(query)]


def test_a_change_is_announced_once_to_each_live_webhook(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assignment, student = course_with_student(session)
        first, second = (webhook_row(session, assignment, f"https://93.184.216.34/{n}") for n in (1, 2))
        gone = webhook_row(session, assignment, "https://93.184.216.34/gone")
        service.delete_webhook(session, gone)
        row = grade_row(student, submission_id="s1", score=40.0, final_score=40.0)

        assert service.announce_changes(session, assignment, [row]) == 2
        assert service.announce_changes(session, assignment, [row]) == 0  # unchanged
        assert (
            service.announce_changes(session, assignment, [replace(row, late_days=1, final_score=36.0)]) == 2
        )
        assert (
            service.announce_changes(session, assignment, [replace(row, late_days=1, final_score=36.0)]) == 0
        )

        written = list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at)))
        assert sorted(d.webhook_id for d in written) == sorted([first.id, second.id] * 2)
        assert {d.status for d in written} == {DeliveryStatus.pending} and {d.event for d in written} == {
            "grade.updated"
        }
        for made in written:
            body = json.loads(made.body)
            assert body["delivery_id"] == made.id
            assert (body["course_id"], body["assignment_id"]) == (assignment.course_id, assignment.id)
            assert body["student"] == {
                "email": student.email,
                "student_number": "05551234",
                "lms_id": "lms-77",
            }
        assert sorted((b["final_score"], b["late_days"]) for b in deliveries(session)) == [
            (36.0, 1),
            (36.0, 1),
            (40.0, 0),
            (40.0, 0),
        ]
        remembered = session.get(AnnouncedGrade, (assignment.id, student.id))
        assert remembered is not None
        assert (remembered.counting_submission_id, remembered.final_score, remembered.late_days) == (
            "s1",
            36.0,
            1,
        )


@pytest.mark.parametrize(
    "change",
    [
        {"submission_id": "s2"},  # another submission counts now, with the same score
        {"score": 45.0, "final_score": 45.0},
        {"final_score": 30.0},
        {"late_days": 2},
    ],
)
def test_each_part_of_a_final_grade_is_a_change(
    sessions: sessionmaker[Session], change: dict[str, object]
) -> None:
    with sessions.begin() as session:
        assignment, student = course_with_student(session)
        webhook_row(session, assignment, "https://93.184.216.34/hook")
        assert service.announce_changes(session, assignment, [grade_row(student)]) == 1
        assert service.announce_changes(session, assignment, [grade_row(student, **change)]) == 1  # type: ignore[arg-type]


def test_a_student_never_graded_is_not_announced_but_a_grade_that_vanished_is(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        assignment, student = course_with_student(session)
        webhook_row(session, assignment, "https://93.184.216.34/hook")
        ungraded = grade_row(student, submission_id=None)
        assert service.announce_changes(session, assignment, [ungraded]) == 0
        assert service.announce_changes(session, assignment, [grade_row(student)]) == 1
        # a shorter extension: the only submission no longer counts
        assert service.announce_changes(session, assignment, [ungraded]) == 1
        vanished = deliveries(session)[-1]
        assert vanished["submission_id"] is None and vanished["score"] is None
        assert vanished["final_score"] is None and vanished["graded_at"] is None
        assert service.announce_changes(session, assignment, [ungraded]) == 0


def test_without_webhooks_nothing_is_announced_or_remembered(sessions: sessionmaker[Session]) -> None:
    """So that a webhook registered later hears each student's next grade, even one equal to an old one."""
    with sessions.begin() as session:
        assignment, student = course_with_student(session)
        assert service.announce_changes(session, assignment, [grade_row(student)]) == 0
        assert session.scalar(select(func.count()).select_from(AnnouncedGrade)) == 0
        webhook_row(session, assignment, "https://93.184.216.34/hook")
        assert service.announce_changes(session, assignment, [grade_row(student)]) == 1


def test_announcements_belong_to_the_callers_transaction(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assignment, student = course_with_student(session)
        webhook_row(session, assignment, "https://93.184.216.34/hook")
        ids = assignment.id, student.id

    def announce(session: Session) -> int:
        found, who = session.get(Assignment, ids[0]), session.get(User, ids[1])
        assert found is not None and who is not None
        return service.announce_changes(session, found, [grade_row(who)])

    with sessions() as session:
        assert announce(session) == 1
        session.rollback()  # the grade's transaction failed: its announcement goes with it
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
        assert session.scalar(select(func.count()).select_from(AnnouncedGrade)) == 0

    with sessions.begin() as session:  # the grade stored after all: announced then
        assert announce(session) == 1
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1


def test_a_real_grading_is_announced_with_the_grades_modules_rows(sessions: sessionmaker[Session]) -> None:
    """A submission graded through the queue; its grade row, announced in the grade's transaction."""
    with sessions.begin() as session:
        assignment, student = course_with_student(session)
        webhook = webhook_row(session, assignment, "https://93.184.216.34/hook")
        made = submission(session, assignment, student)
        queue.enqueue(session, submission_id=made.id)

    with sessions.begin() as session:
        claim = queue.claim(session, worker="w", lease=timedelta(minutes=1))
        assert claim is not None
    with sessions.begin() as session:
        assert queue.complete(session, claim, report="{}", score=42.0, max_score=50.0, sandbox_image=None)
        assignment = session.merge(assignment)
        service.announce_changes(
            session, assignment, grade_rows(session, assignment, student_ids=[student.id])
        )

    with sessions() as session:
        (body,) = deliveries(session)  # one, whether the grade's own transaction announced it or we did
        (delivery,) = session.scalars(select(WebhookDelivery))
        assert delivery.webhook_id == webhook.id
    assert body["submission_id"] == made.id and body["score"] == 42.0 and body["final_score"] == 42.0
    assert body["late_days"] == 0 and isinstance(body["graded_at"], str) and body["graded_at"].endswith("Z")
