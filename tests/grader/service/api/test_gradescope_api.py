"""GET /submissions/{id}/results.json: the report in Gradescope's format, valid against the published field
list, its tests adding up to its score; staff get every check, a student what they may see of the report
(and its score is theirs), as with /report; 409 until graded."""

from __future__ import annotations

from typing import Any

import pytest

from tests.grader.gradescope.results_spec import assert_scores_add_up, assert_valid
from tests.grader.service.api.conftest import REPORT, World
from tests.grader.service.api.test_feedback import FUTURE, PAST, configure

VISIBLE, HIDDEN = (check["id"] for check in REPORT["checks"])  # type: ignore[index]


def results_json(world: World, role: str, submission: str | None = None) -> dict[str, Any]:
    answer = world.client.get(
        f"/api/v1/submissions/{submission or world.submission}/results.json", headers=world.headers[role]
    )
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    assert_valid(document)
    assert_scores_add_up(document)
    return document


def names_of(document: dict[str, Any]) -> list[str]:
    return [test["name"] for test in document["tests"]]


@pytest.mark.parametrize("role", ["ta", "instructor", "admin", "token:grades:read"])
def test_staff_and_grade_tokens_get_every_check(world: World, role: str) -> None:
    configure(world, hidden_results="never")
    document = results_json(world, role)
    assert names_of(document) == [VISIBLE, HIDDEN]
    assert document["score"] == REPORT["score"] == 3.0
    visible, hidden = document["tests"]
    assert (visible["number"], visible["visibility"], visible["status"]) == ("1.1", "visible", "passed")
    assert (hidden["number"], hidden["visibility"], hidden["status"]) == ("1.2", "after_due_date", "failed")
    assert (hidden["score"], hidden["max_score"], hidden["output"]) == (1.0, 3.0, "differs")
    assert document["output"].splitlines()[0] == "cs231n-a2-fc: 3 / 5"


@pytest.mark.parametrize(
    "policy, due_at, shown",
    [("after_due", FUTURE, False), ("after_due", PAST, True), ("always", FUTURE, True)],
)
def test_a_student_gets_what_they_see_of_the_report(
    world: World, policy: str, due_at: str, shown: bool
) -> None:
    configure(world, hidden_results=policy, due_at=due_at)
    document = results_json(world, "owner")
    report = world.client.get(
        f"/api/v1/submissions/{world.submission}/report", headers=world.headers["owner"]
    )
    assert document["score"] == report.json()["score"]
    if shown:
        assert names_of(document) == [VISIBLE, HIDDEN]
        assert document["score"] == 3.0
    else:
        assert names_of(document) == [VISIBLE]
        assert document["tests"][0]["number"] == "1.1"
        assert document["score"] == 2.0
        assert "hidden checks are not shown" in document["output"]
        assert HIDDEN not in str(document) and "differs" not in str(document)
    assert "1234" not in str(document)  # never the seed


def test_results_json_is_409_until_graded(world: World) -> None:
    answer = world.client.post(
        f"/api/v1/assignments/{world.assignment}/submissions",
        headers=world.headers["owner"],
        files=[("files", ("layers.py", b"x = 1\n"))],
    )
    assert answer.status_code == 202
    results = world.client.get(
        f"/api/v1/submissions/{answer.json()['id']}/results.json", headers=world.headers["owner"]
    )
    assert results.status_code == 409 and "not graded yet" in results.json()["detail"]
