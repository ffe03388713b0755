"""What a student sees of their graded submission: hidden checks only as the assignment allows (and the
score of what they see), never the run's seed; staff see the whole report, and the runs with their seeds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from grader.service.submissions.feedback import students_report
from tests.grader.service.api.conftest import REPORT, World

PAST, FUTURE = "2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z"


def configure(world: World, **changes: Any) -> None:
    answer = world.client.patch(
        f"/api/v1/assignments/{world.assignment}", json=changes, headers=world.headers["instructor"]
    )
    assert answer.status_code == 200, answer.text


def seen_by(world: World, role: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report and the submission as `role` gets them."""
    url = f"/api/v1/submissions/{world.submission}"
    report = world.client.get(f"{url}/report", headers=world.headers[role])
    submission = world.client.get(url, headers=world.headers[role])
    assert report.status_code == submission.status_code == 200, report.text
    return report.json(), submission.json()


def check_ids(report: dict[str, Any]) -> list[str]:
    return [check["id"] for check in report["checks"]]


VISIBLE, HIDDEN = (check["id"] for check in REPORT["checks"])


@pytest.mark.parametrize(
    "policy, due_at, shown",
    [
        ("after_due", FUTURE, False),
        ("after_due", PAST, True),
        ("never", PAST, False),
        ("always", FUTURE, True),
    ],
)
def test_a_student_sees_hidden_checks_only_as_the_assignment_allows(
    world: World, policy: str, due_at: str, shown: bool
) -> None:
    configure(world, hidden_results=policy, due_at=due_at)
    report, submission = seen_by(world, "owner")
    assert "seed" not in report
    if shown:
        assert check_ids(report) == [VISIBLE, HIDDEN]
        assert (report["score"], report["max_score"]) == (3.0, 5.0)
    else:
        assert check_ids(report) == [VISIBLE]
        assert (report["score"], report["max_score"]) == (2.0, 2.0)
        assert report["questions"] == [{"name": "Q1", "score": 2.0, "max_score": 2.0}]
        assert any("hidden checks are not shown" in note for note in report["notes"])
        assert HIDDEN not in str(report) and "differs" not in str(report)
    assert (submission["score"], submission["max_score"]) == (report["score"], report["max_score"])


def test_an_extension_keeps_hidden_checks_hidden_until_the_students_own_due_date(world: World) -> None:
    configure(world, hidden_results="after_due", due_at=PAST)
    assert check_ids(seen_by(world, "owner")[0]) == [VISIBLE, HIDDEN]
    extended = world.client.post(
        f"/api/v1/assignments/{world.assignment}/extensions",
        json={"email": world.emails["owner"], "due_at": FUTURE},
        headers=world.headers["instructor"],
    )
    assert extended.status_code == 201
    assert check_ids(seen_by(world, "owner")[0]) == [VISIBLE]


@pytest.mark.parametrize("role", ["ta", "instructor", "admin", "token:grades:read"])
def test_staff_and_grade_tokens_see_the_whole_report_with_its_seed(world: World, role: str) -> None:
    configure(world, hidden_results="never")
    report = world.client.get(f"/api/v1/submissions/{world.submission}/report", headers=world.headers[role])
    assert report.json() == REPORT


def test_staff_see_every_run_with_its_seed_and_image(world: World) -> None:
    runs = world.client.get(
        f"/api/v1/submissions/{world.submission}/runs", headers=world.headers["ta"]
    ).json()
    assert [(run["attempt"], run["status"], run["score"]) for run in runs] == [(1, "graded", 3.0)]
    assert isinstance(runs[0]["seed"], int) and runs[0]["grader_version"]


def test_the_report_is_409_until_graded(world: World) -> None:
    answer = world.client.post(
        f"/api/v1/assignments/{world.assignment}/submissions",
        headers=world.headers["owner"],
        files=[("files", ("layers.py", b"x = 1\n"))],
    )
    assert answer.status_code == 202
    report = world.client.get(
        f"/api/v1/submissions/{answer.json()['id']}/report", headers=world.headers["owner"]
    )
    assert report.status_code == 409 and "not graded yet" in report.json()["detail"]


def _check(id: str, target: str, visibility: str, status: str, message: str) -> dict[str, Any]:
    return {
        "id": id,
        "target": target,
        "question": "Q1",
        "status": status,
        "score": 1.0 if status == "passed" else 0.0,
        "max_score": 1.0,
        "visibility": visibility,
        "message": message,
        "diagnosis": [],
        "errors": {},
    }


def test_visible_messages_do_not_name_a_function_that_fails_hidden_checks_only() -> None:
    """The grader's notes in visible checks name failing functions; one that fails hidden checks only
    must not be named to a student before the hidden results are shown."""
    report = {
        **REPORT,
        "checks": [
            _check("layers.relu_forward.notebook", "layers.relu_forward", "visible", "passed", "ok"),
            _check("layers.relu_forward.hidden", "layers.relu_forward", "hidden", "failed", "out differs"),
            _check(
                "layers.relu_backward.notebook",
                "layers.relu_backward",
                "visible",
                "passed",
                "dx differ from the reference but are the exact gradient of your own relu_forward, so its "
                "mistake costs points in relu_forward's checks only",
            ),
            _check(
                "fc_net.loss.notebook",
                "fc_net.FullyConnectedNet",
                "visible",
                "failed",
                "loss differs (max relative error 0.5)\n"
                "judged against the course's architecture built from your own layer functions, because "
                "layers.relu_forward fails its own checks (it loses those points there, not here)\n"
                "it relies on functions that fail their own checks: "
                "layers.affine_forward, layers.relu_forward",
            ),
            _check(
                "layers.affine_forward.notebook", "layers.affine_forward", "visible", "failed", "out differs"
            ),
        ],
    }
    hidden = students_report(report, show_hidden=False)
    assert "relu_forward" not in json.dumps([c["message"] for c in hidden["checks"]])
    messages = {check["id"]: check["message"] for check in hidden["checks"]}
    assert messages["fc_net.loss.notebook"] == "loss differs (max relative error 0.5)"  # the rest stays
    assert messages["layers.affine_forward.notebook"] == "out differs"
    shown = students_report(report, show_hidden=True)
    assert [c["message"] for c in shown["checks"]] == [c["message"] for c in report["checks"]]
