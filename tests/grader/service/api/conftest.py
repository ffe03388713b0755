"""The API's test world, on each database: two courses with their people, an assignment, API tokens of
every scope, and a graded submission of one student (someone else's object, for everyone else)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from grader import EXAMPLE_SUBMISSION
from grader.intake.uploads import load_submission
from grader.service.accounts.models import User
from grader.service.accounts.service import create_api_token, create_user
from grader.service.accounts.tokens import issue_access_token
from grader.service.app import create_app
from grader.service.assignments.models import Assignment, HiddenResults
from grader.service.courses.models import Course, Membership, Role
from grader.service.grading import queue
from grader.service.submissions.models import Source
from grader.service.submissions.service import submit
from grader.settings import Settings

SECRET = "a-test-secret-of-more-than-32-characters"
PASSWORD = "correct horse battery"
GRADED_NAMES = ("layers.py", "fc_net.py", "optim.py")
# A report shaped like `grader grade --json`: one visible check, one hidden one.
REPORT = {
    "assignment": "cs231n-a2-fc",
    "seed": 1234,
    "score": 3.0,
    "max_score": 5.0,
    "questions": [{"name": "Q1", "score": 3.0, "max_score": 5.0}],
    "checks": [
        {
            "id": "layers.affine_forward.output",
            "target": "layers.affine_forward",
            "question": "Q1",
            "status": "passed",
            "score": 2.0,
            "max_score": 2.0,
            "visibility": "visible",
            "message": "ok",
            "diagnosis": [],
            "errors": {},
        },
        {
            "id": "layers.affine_forward.hidden_output",
            "target": "layers.affine_forward",
            "question": "Q1",
            "status": "failed",
            "score": 1.0,
            "max_score": 3.0,
            "visibility": "hidden",
            "message": "differs",
            "diagnosis": [],
            "errors": {},
        },
    ],
    "sandbox": {"executor": "process"},
    "notes": [],
}


def example_files() -> list[tuple[str, tuple[str, bytes]]]:
    """The example's graded files as multipart parts named `files`."""
    return [("files", (name, (EXAMPLE_SUBMISSION / name).read_bytes())) for name in GRADED_NAMES]


def example_zip(prefix: str = "assignment2/cs231n/") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in GRADED_NAMES:
            folder = "classifiers/" if name == "fc_net.py" else ""
            archive.writestr(prefix + folder + name, (EXAMPLE_SUBMISSION / name).read_bytes())
    return buffer.getvalue()


@dataclass
class World:
    """Ids of the objects every test works on, and the Authorization header of each role."""

    client: TestClient
    app: FastAPI
    course: str = ""
    other_course: str = ""
    assignment: str = ""
    submission: str = ""  # the student `owner`'s, graded
    token_to_revoke: str = ""
    emails: dict[str, str] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def session(self) -> Session:
        return self.app.state.sessions()  # type: ignore[no-any-return]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api_settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=SECRET,  # type: ignore[arg-type]
        sandbox="process",
    )


@pytest.fixture
def client(api_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings)) as client:
        yield client


@pytest.fixture
def world(client: TestClient) -> World:
    app: FastAPI = client.app  # type: ignore[assignment]
    made = World(client=client, app=app)
    with app.state.sessions.begin() as session:
        _populate(made, session, app)
    return made


def _person(session: Session, world: World, role: str, *, admin: bool = False) -> User:
    email = f"{role.replace('_', '.')}@example.org"
    user = create_user(session, email=email, name=role.title(), password=None, is_admin=admin)
    world.emails[role] = email
    token = issue_access_token(user.id, secret=SECRET, lifetime=timedelta(hours=1))
    world.headers[role] = _bearer(token)
    return user


def _populate(world: World, session: Session, app: FastAPI) -> None:
    course, other = Course(slug="cs231n", title="CS231n"), Course(slug="cs682", title="CS682")
    session.add_all([course, other])
    session.flush()
    world.course, world.other_course = course.id, other.id
    people = {
        "student": (course, Role.student),
        "owner": (course, Role.student),
        "ta": (course, Role.ta),
        "instructor": (course, Role.instructor),
        "other_student": (other, Role.student),
        "other_instructor": (other, Role.instructor),
    }
    users = {}
    for role, (where, as_role) in people.items():
        users[role] = _person(session, world, role)
        session.add(Membership(course_id=where.id, user_id=users[role].id, role=as_role))
    _person(session, world, "admin", admin=True)
    world.headers["anonymous"] = {}
    for scope in ("submissions:write", "submissions:read", "grades:read"):
        _, secret = create_api_token(
            session, course_id=course.id, name=scope, scopes=[scope], created_by_id=users["instructor"].id
        )
        world.headers[f"token:{scope}"] = _bearer(secret)
    revoked, secret = create_api_token(
        session, course_id=course.id, name="old", scopes=["grades:read"], created_by_id=users["instructor"].id
    )
    revoked.revoked_at = datetime.now(UTC)
    world.headers["revoked_token"] = _bearer(secret)
    victim, _ = create_api_token(
        session,
        course_id=course.id,
        name="victim",
        scopes=["grades:read"],
        created_by_id=users["instructor"].id,
    )
    world.token_to_revoke = victim.id
    assignment = Assignment(
        course_id=course.id,
        slug="a2",
        title="Assignment 2",
        catalog="cs231n-a2-fc",
        due_at=datetime.now(UTC) + timedelta(days=7),
        hidden_results=HiddenResults.after_due,
    )
    session.add(assignment)
    session.flush()
    world.assignment = assignment.id
    world.submission = graded_submission(session, app, assignment, users["owner"])


def graded_submission(session: Session, app: FastAPI, assignment: Assignment, student: User) -> str:
    """A submission of the example's files, graded through the queue with REPORT."""
    submission, _ = submit(
        session,
        app.state.store,
        assignment=assignment,
        student_id=student.id,
        upload=load_submission(EXAMPLE_SUBMISSION),
        caller=f"user:{student.id}",
        submitted_by_id=student.id,
        source=Source.api,
    )
    claim = queue.claim(session, worker="test", lease=timedelta(minutes=5))
    assert claim is not None and claim.submission_id == submission.id
    stored = queue.complete(
        session, claim, report=json.dumps(REPORT), score=3.0, max_score=5.0, sandbox_image=None
    )
    assert stored
    return submission.id
