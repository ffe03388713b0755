"""A grade change reaches an LMS on the campus network (GRADER_WEBHOOK_ALLOW_PRIVATE=true), a real
receiver on loopback that checks the signature and fails the first attempt: the webhook registered
through the API, a submission graded through the queue, the delivery retried and both attempts logged."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from grader.service.accounts.models import User
from grader.service.assignments.models import Assignment
from grader.service.db import utcnow
from grader.service.grades.service import grade_rows
from grader.service.webhooks import service
from grader.service.webhooks.delivery import deliver_due
from grader.service.webhooks.models import WebhookDelivery
from grader.settings import Settings
from tests.grader.service.api.conftest import World, graded_submission
from tests.grader.service.webhooks.conftest import Receiver


@pytest.fixture
def api_settings(api_settings: Settings, database_url: str) -> Settings:
    """The world's settings, for a campus LMS (naming database_url lets pytest see its two backends)."""
    return api_settings.model_copy(update={"webhook_allow_private": True})


def test_a_new_grade_is_delivered_signed_after_a_failed_first_attempt(
    world: World, receiver: Receiver
) -> None:
    created = world.client.post(
        f"/api/v1/assignments/{world.assignment}/webhooks",
        json={"url": receiver.url(path="/lms/grades?course=cs231n")},
        headers=world.headers["instructor"],
    )
    assert created.status_code == 201, created.text
    webhook_id, receiver.secret = created.json()["id"], created.json()["secret"]
    receiver.answers = [500]

    with world.session() as session:
        assignment = session.get(Assignment, world.assignment)
        student = session.scalar(select(User).where(User.email == world.emails["student"]))
        assert assignment is not None and student is not None
        submission_id = graded_submission(session, world.app, assignment, student)
        # in the grade's transaction (the worker's own call may have announced it already)
        service.announce_changes(
            session, assignment, grade_rows(session, assignment, student_ids=[student.id])
        )
        session.commit()
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1

    sessions, settings = world.app.state.sessions, world.app.state.settings
    assert deliver_due(sessions, settings=settings, worker="test") == 1
    assert deliver_due(sessions, settings=settings, worker="test", now=utcnow() + timedelta(minutes=1)) == 1

    first, second = receiver.received
    assert first.signed and second.signed and first.body == second.body
    assert second.path == "/lms/grades?course=cs231n"
    body = json.loads(second.body)
    assert body == {
        "event": "grade.updated",
        "delivery_id": second.headers["X-Grader-Delivery"],
        "course_id": world.course,
        "assignment_id": world.assignment,
        "submission_id": submission_id,
        "student": {"email": world.emails["student"], "student_number": None, "lms_id": None},
        "score": 3.0,
        "max_score": 5.0,
        "final_score": 3.0,
        "late_days": 0,
        "graded_at": body["graded_at"],
    }
    assert body["graded_at"].endswith("Z")

    log = world.client.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=world.headers["instructor"])
    (delivery,) = log.json()
    assert delivery["status"] == "delivered" and delivery["payload"] == body
    assert [(a["number"], a["status_code"]) for a in delivery["attempts"]] == [(1, 500), (2, 200)]
