"""Final grades through the API: the counting submission, the late policy, extensions, and the CSV
exports read back with the csv module and checked against the JSON."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from grader.service.accounts.models import User
from grader.service.assignments.models import Assignment
from grader.service.courses.models import Membership, Role
from grader.service.db import new_id
from grader.service.grades.service import catalog_max_score
from grader.service.submissions.models import Source, Submission
from grader.service.webhooks.models import Webhook, WebhookDelivery
from tests.grader.service.api.conftest import World
from tests.grader.service.factories import graded_run

DUE = datetime(2026, 3, 1, 23, 59, tzinfo=UTC)
MAX = catalog_max_score("cs231n-a2-fc")


def graded(world: World, assignment_id: str, student_id: str, score: float, at: datetime) -> str:
    """A submission handed in `at`, graded with `score` (rows as the queue leaves them)."""
    with world.session() as session, session.begin():
        submission = Submission(
            assignment_id=assignment_id,
            student_id=student_id,
            submitted_by_id=student_id,
            caller=f"user:{student_id}",
            source=Source.api,
            late=at > DUE,
            created_at=at,
        )
        session.add(submission)
        session.flush()
        report = {"score": score, "max_score": MAX, "checks": [], "questions": []}
        graded_run(session, submission.id, report, finished_at=at + timedelta(seconds=30), seconds=30.0)
        return submission.id


def student(world: World, name: str, **membership: Any) -> str:
    with world.session() as session, session.begin():
        email = f"{new_id()[:6]}@example.org"
        user = User(email=email, email_key=email, name=name)
        session.add(user)
        session.flush()
        session.add(Membership(course_id=world.course, user_id=user.id, role=Role.student, **membership))
        return user.id


@pytest.fixture
def assignment(world: World) -> str:
    with world.session() as session, session.begin():
        made = Assignment(
            course_id=world.course,
            slug="a2-graded",
            title='Assignment 2, "FC nets"',
            catalog="cs231n-a2-fc",
            due_at=DUE,
        )
        session.add(made)
        session.flush()
        return made.id


def grades(world: World, assignment: str, role: str = "instructor") -> dict[str, dict[str, Any]]:
    answer = world.client.get(f"/api/v1/assignments/{assignment}/grades", headers=world.headers[role])
    assert answer.status_code == 200, answer.text
    return {row["name"]: row for row in answer.json()}


def change(world: World, assignment: str, **fields: Any) -> None:
    answer = world.client.patch(
        f"/api/v1/assignments/{assignment}", json=fields, headers=world.headers["instructor"]
    )
    assert answer.status_code == 200, answer.text


def test_the_counting_submission_and_the_late_penalty_follow_the_policy(
    world: World, assignment: str
) -> None:
    ada = student(world, "Ada")
    student(world, "Bob", student_number="S-2", lms_id="4242")
    on_time = graded(world, assignment, ada, 80.0, DUE - timedelta(hours=1))
    late = graded(world, assignment, ada, 86.0, DUE + timedelta(days=1, minutes=1))  # the 2nd day began
    change(world, assignment, late_policy="per_day", penalty_per_day=0.1)

    rows = grades(world, assignment)
    assert set(rows) >= {"Ada", "Bob", "Owner", "Student"}  # every student, those with nothing too
    assert rows["Ada"] | {"graded_at": None} == {
        "email": rows["Ada"]["email"],
        "name": "Ada",
        "student_number": None,
        "lms_id": None,
        "submissions": 2,
        "counting_submission_id": on_time,  # 80 on time beats 86 * (1 - 0.2) = 68.8
        "score": 80.0,
        "max_score": MAX,
        "late_days": 0,
        "penalty": 0.0,
        "final_score": 80.0,
        "graded_at": None,
    }
    assert rows["Bob"]["submissions"] == 0 and rows["Bob"]["score"] is None
    assert rows["Bob"]["final_score"] is None and rows["Bob"]["max_score"] == MAX
    assert (rows["Bob"]["student_number"], rows["Bob"]["lms_id"]) == ("S-2", "4242")

    change(world, assignment, counting="last")
    row = grades(world, assignment)["Ada"]
    assert (row["counting_submission_id"], row["late_days"]) == (late, 2)
    assert row["penalty"] == pytest.approx(0.2) and row["final_score"] == pytest.approx(68.8)

    change(world, assignment, penalty_per_day=0.6)  # never below 0
    assert grades(world, assignment)["Ada"]["final_score"] == 0.0
    change(world, assignment, max_late_days=1)  # now too late to count at all: the last counting one
    assert grades(world, assignment)["Ada"]["counting_submission_id"] == on_time
    change(world, assignment, late_policy="none")
    assert grades(world, assignment)["Ada"]["counting_submission_id"] == on_time

    extended = world.client.post(
        f"/api/v1/assignments/{assignment}/extensions",
        json={"email": rows["Ada"]["email"], "due_at": (DUE + timedelta(days=3)).isoformat()},
        headers=world.headers["ta"],
    )
    assert extended.status_code == 201, extended.text
    row = grades(world, assignment)["Ada"]  # her own due date: the late one is on time, and the last
    assert (row["counting_submission_id"], row["late_days"], row["final_score"]) == (late, 0, 86.0)


def test_a_student_reads_their_own_row_only_with_the_scores_they_see(world: World) -> None:
    rows = grades(world, world.assignment, role="owner")
    assert list(rows) == ["Owner"]
    # The report's hidden check (1 of 3 points) is not shown before the due date: 2 of 2 visible.
    assert (rows["Owner"]["score"], rows["Owner"]["max_score"]) == (2.0, 2.0)
    staff = grades(world, world.assignment)["Owner"]
    assert (staff["score"], staff["max_score"]) == (3.0, 5.0)
    assert list(grades(world, world.assignment, role="student")) == ["Student"]
    assert grades(world, world.assignment, role="student")["Student"]["score"] is None


def export(world: World, assignment: str, kind: str) -> list[list[str]]:
    answer = world.client.get(
        f"/api/v1/assignments/{assignment}/grades.csv",
        params={"format": kind},
        headers=world.headers["token:grades:read"],
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert f"{kind}.csv" in answer.headers["content-disposition"]
    assert not answer.content.startswith(b"\xef\xbb\xbf") and b"\r\n" in answer.content
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8"), newline="")))


def test_each_export_reads_back_as_the_json_says(world: World, assignment: str) -> None:
    zoe = student(
        world,
        "Zoë O'Brien-Ñúñez",
        first_name="Zoë",
        last_name="O'Brien-Ñúñez",
        student_number="SIS,7",  # a comma: quoted
        lms_id="1001",
        sis_login_id="zoe",
        section='Section "A"',
    )
    graded(world, assignment, zoe, 85.5, DUE - timedelta(days=1))
    change(world, assignment, canvas_assignment_id="9876")
    rows = grades(world, assignment, role="token:grades:read")
    by_email = {row["email"]: row for row in rows.values()}

    canvas = export(world, assignment, "canvas")
    title = 'Assignment 2, "FC nets" (9876)'
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", title]
    assert canvas[1] == ["Points Possible", "", "", "", "", f"{MAX:g}"]
    assert ["O'Brien-Ñúñez, Zoë", "1001", "SIS,7", "zoe", 'Section "A"', "85.5"] in canvas
    assert len(canvas) == 2 + len(rows)
    for line in canvas[2:]:
        row = next(
            r
            for r in rows.values()
            if (r["lms_id"] or "") == line[1] and r["name"].endswith(line[0].split(", ")[0])
        )
        assert line[5] == ("" if row["final_score"] is None else f"{row['final_score']:g}")

    moodle = export(world, assignment, "moodle")
    assert moodle[0] == [
        "First name",
        "Last name",
        "Email address",
        "ID number",
        title.removesuffix(" (9876)"),
    ]
    assert len(moodle) == 1 + len(rows)
    for first, last, email, number, score in moodle[1:]:
        row = by_email[email]
        assert (row["student_number"] or "", score) == (
            number,
            "" if row["final_score"] is None else f"{row['final_score']:g}",
        )
        assert f"{first} {last}".strip() == row["name"]

    plain = export(world, assignment, "plain")
    assert plain[0] == list(next(iter(rows.values())))  # every column of the JSON, in its order
    for line in plain[1:]:
        row = by_email[line[0]]
        for column, text in zip(plain[0], line, strict=True):
            value = row[column]
            if value is None:
                assert text == ""
            elif isinstance(value, float):
                assert float(text) == pytest.approx(value)
            else:
                assert text == str(value)


def test_a_canvas_assignment_id_is_its_number(world: World) -> None:
    answer = world.client.patch(
        f"/api/v1/assignments/{world.assignment}",
        json={"canvas_assignment_id": "a2-fc"},  # Canvas would make a new column "Title (a2-fc)"
        headers=world.headers["instructor"],
    )
    assert answer.status_code == 422 and answer.json()["detail"].startswith("canvas_assignment_id:")


def test_an_export_in_an_unknown_format_is_a_clear_error(world: World) -> None:
    answer = world.client.get(
        f"/api/v1/assignments/{world.assignment}/grades.csv",
        params={"format": "excel"},
        headers=world.headers["instructor"],
    )
    assert answer.status_code == 422 and "canvas" in answer.json()["detail"]


def test_a_changed_policy_or_extension_announces_the_grades_it_changes(world: World, assignment: str) -> None:
    ada = student(world, "Ada")
    graded(world, assignment, ada, 80.0, DUE + timedelta(hours=2))  # one started day late
    with world.session() as session, session.begin():
        session.add(
            Webhook(assignment_id=assignment, url="https://lms.example.org/h", secret="s", created_by="t")
        )

    def announced() -> list[tuple[float | None, int]]:
        with world.session() as session:
            deliveries = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at))
            return [(json.loads(d.body)["final_score"], json.loads(d.body)["late_days"]) for d in deliveries]

    change(world, assignment, late_policy="per_day", penalty_per_day=0.25)
    assert announced() == [(60.0, 1)]
    change(world, assignment, title="Renamed")  # no grade changed: nothing announced
    assert announced() == [(60.0, 1)]
    email = grades(world, assignment)["Ada"]["email"]
    extended = world.client.post(
        f"/api/v1/assignments/{assignment}/extensions",
        json={"email": email, "due_at": (DUE + timedelta(days=1)).isoformat()},
        headers=world.headers["instructor"],
    )
    assert extended.status_code == 201, extended.text
    assert announced() == [(60.0, 1), (80.0, 0)]
