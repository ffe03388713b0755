"""A report in Gradescope's results.json format: valid against the published field list, a test per check
whose scores add up to the score, hidden checks shown after the due date, and nothing shown before it
that tells a hidden result."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from grader.gradescope.results import check_numbers, check_summaries, gradescope_results
from tests.grader.gradescope.results_spec import assert_scores_add_up, assert_valid, problems
from tests.grader.service.api.conftest import REPORT

VISIBLE, HIDDEN = REPORT["checks"]  # type: ignore[misc]


def check(
    id: str,
    *,
    question: str = "Q1",
    status: str = "passed",
    score: float = 1.0,
    max_score: float = 1.0,
    **more: Any,
) -> dict[str, Any]:
    base = {
        "id": id,
        "target": id.rsplit(".", 1)[0],
        "question": question,
        "status": status,
        "score": score,
        "max_score": max_score,
        "visibility": "visible",
        "message": "all outputs agree with the reference" if status == "passed" else "out differs",
        "diagnosis": [],
        "errors": {},
    }
    return {**base, **more}


def report(*checks: dict[str, Any], questions: tuple[str, ...] = ("Q1",)) -> dict[str, Any]:
    return {
        **copy.deepcopy(REPORT),
        "questions": [{"name": name, "score": 0.0, "max_score": 0.0} for name in questions],
        "checks": list(checks),
    }


def test_the_report_becomes_a_valid_results_json_whose_tests_add_up_to_its_score() -> None:
    results = gradescope_results(REPORT, execution_time=3.2)
    assert_valid(results)
    assert_scores_add_up(results)
    assert results["score"] == REPORT["score"] == 3.0
    assert results["execution_time"] == 4
    visible, hidden = results["tests"]
    assert (visible["number"], visible["status"], visible["visibility"]) == ("1.1", "passed", "visible")
    assert (hidden["number"], hidden["status"], hidden["visibility"]) == ("1.2", "failed", "after_due_date")
    assert (hidden["score"], hidden["max_score"], hidden["output"]) == (1.0, 3.0, "differs")
    assert visible["name"] == VISIBLE["id"]  # the report's catalog is named, but REPORT's ids are not in it
    assert "seed" not in json.dumps(results)


def test_the_validator_finds_what_gradescope_would_refuse() -> None:
    broken = {
        "score": "3",
        "visibility": "students",
        "extra": 1,
        "tests": [{"name": "x", "status": "ok", "max_score": True, "tags": [1]}],
    }
    found = problems(broken)
    assert any(line.startswith("results.score:") for line in found)
    assert any(line.startswith("results.visibility:") for line in found)
    assert "results.extra: not a field of the specification" in found
    assert any(line.startswith("tests[0].status:") for line in found)
    assert any(line.startswith("tests[0].max_score:") for line in found)
    assert "tests[0].tags: not a list of strings" in found
    assert problems({"tests": [{"name": "x"}]}) == ["results.score: required when a test has no score"]


def test_tests_are_named_by_the_catalog_and_numbered_by_question() -> None:
    from grader.assignments import get_assignment

    catalog = get_assignment("cs231n-a2-fc")
    checks = catalog.build_checks(0)
    whole = report(
        *(check(c.id, question=c.question, visibility=c.visibility) for c in checks),
        questions=catalog.questions,
    )
    results = gradescope_results(whole, summaries=check_summaries("cs231n-a2-fc"))
    first, second = results["tests"][:2]
    assert first["name"] == "layers.affine_forward.notebook: affine_forward on the notebook's linspace case"
    assert (first["number"], second["number"]) == ("1.1", "1.2")
    q2 = next(test for test, c in zip(results["tests"], checks, strict=True) if c.question.startswith("Q2"))
    assert q2["number"] == "2.1"
    assert len({test["number"] for test in results["tests"]}) == len(checks)
    assert check_summaries("no-such-catalog") == {}


def test_a_students_view_keeps_each_checks_number_from_the_whole_report() -> None:
    whole = report(
        check("layers.a.notebook"),
        check("layers.a.hidden", visibility="hidden"),
        check("layers.b.notebook"),
    )
    view = {**whole, "checks": [c for c in whole["checks"] if c["visibility"] != "hidden"]}
    results = gradescope_results(view, numbers=check_numbers(whole))
    assert [test["number"] for test in results["tests"]] == ["1.1", "1.3"]
    assert_scores_add_up(results)


def test_a_failing_check_says_what_it_diagnosed() -> None:
    explained = "out differs\nlikely mistake [bn_eps_outside_sqrt]: eps is added outside the square root"
    results = gradescope_results(
        report(
            check(
                "layers.bn.a",
                status="failed",
                score=0.5,
                message=explained,
                diagnosis=["bn_eps_outside_sqrt"],
            ),
            check("layers.bn.b", status="failed", score=0.0, diagnosis=["bn_momentum"]),
            check("layers.bn.c", status="timeout", score=0.0, message=""),
        )
    )
    explained_test, coded, timed_out = results["tests"]
    assert explained_test["output"] == explained  # said once
    assert coded["output"] == "out differs\nlikely mistake: bn_momentum"
    assert timed_out["output"] == "timeout" and timed_out["status"] == "failed"


@given(st.lists(st.tuples(st.integers(0, 30000), st.integers(1, 30000)), min_size=1, max_size=60))
def test_scores_add_up_exactly_whatever_the_fractions(parts: list[tuple[int, int]]) -> None:
    checks = [
        check(f"layers.f{i}.x", status="failed", score=round(min(a, b) / 10000, 4), max_score=b / 10000)
        for i, (a, b) in enumerate(parts)
    ]
    results = gradescope_results(report(*checks))
    assert_valid(results)
    assert_scores_add_up(results)


def test_before_the_due_date_nothing_shown_tells_a_hidden_result() -> None:
    """Gradescope's own autograder: the document goes to students as it is; the hidden tests wait for the
    due date, and the summary and the visible tests' outputs must not give them away."""
    relies = "it relies on functions that fail their own checks: layers.relu_forward"
    whole = report(
        check("layers.relu_forward.notebook"),
        check("layers.relu_forward.random", visibility="hidden", status="failed", score=0.0),
        check("fc_net.loss.notebook", status="failed", score=0.0, message=f"loss differs\n{relies}"),
        check("fc_net.loss.hidden", visibility="hidden", status="failed", score=0.0, message=f"x\n{relies}"),
    )
    results = gradescope_results(whole, shown_before_due_date=True)
    assert_valid(results)
    assert_scores_add_up(results)
    outputs = {test["name"]: test["output"] for test in results["tests"]}
    assert outputs["fc_net.loss.notebook"] == "loss differs"
    assert outputs["fc_net.loss.hidden"] == f"x\n{relies}"  # shown after the due date, whole
    assert [test["visibility"] for test in results["tests"]] == ["visible", "after_due_date"] * 2
    summary = results["output"]
    assert summary.splitlines()[:2] == ["cs231n-a2-fc: 1 / 2", "  Q1: 1 / 2"]
    assert "2 hidden checks (2 points)" in summary and "relu" not in summary
    staff = gradescope_results(whole)
    assert staff["output"].splitlines()[0] == "cs231n-a2-fc: 1 / 4"
    assert relies in next(t["output"] for t in staff["tests"] if t["name"] == "fc_net.loss.notebook")
