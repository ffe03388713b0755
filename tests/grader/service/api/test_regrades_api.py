"""Regrades through the API: new runs at a lower priority than fresh submissions, the history kept, the
new score counting once graded and a failed regrade leaving the old one."""

from __future__ import annotations

import json
from datetime import timedelta

from grader.service.db import utcnow
from grader.service.grading import queue
from grader.service.grading.models import GradingRun
from tests.grader.service.api.conftest import REPORT, World, example_files

LEASE = timedelta(minutes=5)


def regrade(world: World, role: str = "instructor") -> dict[str, object]:
    answer = world.client.post(f"/api/v1/submissions/{world.submission}/regrade", headers=world.headers[role])
    assert answer.status_code == 202, answer.text
    return answer.json()  # type: ignore[no-any-return]


def grade_next(world: World, score: float | None) -> str:
    """Claim the next job and store `score` (None: fail it for the infrastructure's reasons, 3 times)."""
    with world.session() as session, session.begin():
        claim = queue.claim(session, worker="test", lease=LEASE)
        assert claim is not None
        if score is not None:
            report = json.dumps(REPORT | {"score": score})
            assert queue.complete(
                session, claim, report=report, score=score, max_score=5.0, sandbox_image=None
            )
            return claim.submission_id
    for _ in range(2):  # the job comes back after RETRY_DELAY: fail its later attempts at once
        with world.session() as session, session.begin():
            queue.fail(session, claim, error="SandboxUnavailable: no engine")
        with world.session() as session, session.begin():
            claim = queue.claim(session, worker="test", lease=LEASE, now=utcnow() + timedelta(minutes=1))
            assert claim is not None
    with world.session() as session, session.begin():
        queue.fail(session, claim, error="SandboxUnavailable: no engine")
    return claim.submission_id


def staff_view(world: World) -> dict[str, object]:
    answer = world.client.get(f"/api/v1/submissions/{world.submission}", headers=world.headers["instructor"])
    return answer.json()  # type: ignore[no-any-return]


def test_a_regrade_adds_a_run_and_its_score_counts_once_graded(world: World) -> None:
    first = regrade(world)
    assert regrade(world, "ta") == first  # a double click regrades once
    assert staff_view(world)["status"] == "queued" and staff_view(world)["score"] == 3.0  # the old one
    assert grade_next(world, 4.5) == world.submission
    assert (staff_view(world)["status"], staff_view(world)["score"]) == ("graded", 4.5)
    runs = world.client.get(
        f"/api/v1/submissions/{world.submission}/runs", headers=world.headers["ta"]
    ).json()
    assert [(run["status"], run["score"]) for run in runs] == [("graded", 3.0), ("graded", 4.5)]


def test_a_regrade_the_infrastructure_fails_leaves_the_old_score(world: World) -> None:
    regrade(world)
    grade_next(world, None)
    assert (staff_view(world)["status"], staff_view(world)["score"]) == ("graded", 3.0)
    with world.session() as session:
        statuses = [run.status for run in session.query(GradingRun).order_by(GradingRun.started_at)]
    assert statuses == ["graded", "failed", "failed", "failed"]


def test_a_mass_regrade_waits_behind_fresh_submissions_and_reports_its_progress(world: World) -> None:
    never = world.client.get(f"/api/v1/assignments/{world.assignment}/regrade", headers=world.headers["ta"])
    assert never.status_code == 404 and "never regraded" in never.json()["detail"]
    url = f"/api/v1/assignments/{world.assignment}/regrade"
    started = world.client.post(url, headers=world.headers["ta"])
    assert started.status_code == 202, started.text
    assert started.json() | {"id": "", "created_at": ""} == {
        "id": "",
        "assignment_id": world.assignment,
        "every_submission": False,
        "jobs": 1,  # the one student with a graded submission: its counting one
        "queued": 1,
        "running": 0,
        "done": 0,
        "failed": 0,
        "finished": False,
        "created_at": "",
    }
    again = world.client.post(url, headers=world.headers["instructor"])  # while it is unfinished
    assert again.status_code == 202 and again.json()["id"] == started.json()["id"]
    fresh = world.client.post(
        f"/api/v1/assignments/{world.assignment}/submissions",
        files=example_files(),
        headers=world.headers["student"],
    )
    assert fresh.status_code == 202, fresh.text
    assert grade_next(world, 2.0) == fresh.json()["id"]  # the fresh one first, though it came later
    assert grade_next(world, 5.0) == world.submission
    done = world.client.get(url, headers=world.headers["instructor"]).json()
    assert (done["done"], done["queued"], done["finished"]) == (1, 0, True)
    again = world.client.post(url, params={"all": "true"}, headers=world.headers["instructor"]).json()
    assert (again["every_submission"], again["jobs"]) == (True, 2)  # the fresh one too, this time


def test_only_staff_regrade(world: World) -> None:
    own = world.client.post(f"/api/v1/submissions/{world.submission}/regrade", headers=world.headers["owner"])
    assert own.status_code == 403 and "only the course's staff may regrade" in own.json()["detail"]
    token = world.client.post(
        f"/api/v1/assignments/{world.assignment}/regrade", headers=world.headers["token:submissions:write"]
    )
    assert token.status_code == 403
