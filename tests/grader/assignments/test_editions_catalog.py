"""The catalog's editions: one definition, three years of the course's API, each graded as its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.assignments import get_assignment
from grader.assignments.cs231n_a2_fc.editions import EDITIONS, edition_mismatch, edition_of_source
from grader.engine.grading import grade_submission
from grader.engine.report import Report
from grader.intake.uploads import load_submission
from grader.sandbox_client.executor import LocalProcessExecutor
from tests.fixtures.submissions import buggy

CORRECT = {
    "cs231n-a2-fc": "correct_course",
    "cs231n-a2-fc-2018": "correct_2018",
    "cs231n-a2-fc-2017": "correct_2017",
}


def folder_of(name: str, tmp_path: Path) -> Path:
    return buggy.CORRECT_COURSE if name == "correct_course" else buggy.materialize(name, tmp_path)


def grade(folder: Path, edition: str, seed: int = 7) -> Report:
    submission = load_submission(folder)
    return grade_submission(submission, get_assignment(edition), seed=seed, executor=LocalProcessExecutor())


def test_the_editions_share_one_definition_and_differ_where_the_api_did() -> None:
    ids = {name: [c.id for c in get_assignment(name).build_checks(0)] for name in EDITIONS}
    assert ids["cs231n-a2-fc"] == ids["cs231n-a2-fc-2018"]
    assert [i for i in ids["cs231n-a2-fc"] if "layernorm" not in i] == ids["cs231n-a2-fc-2017"]
    assert len(ids["cs231n-a2-fc"]) - len(ids["cs231n-a2-fc-2017"]) == 5
    totals = {name: sum(c.points for c in get_assignment(name).build_checks(0)) for name in EDITIONS}
    assert totals == {"cs231n-a2-fc": 86, "cs231n-a2-fc-2018": 86, "cs231n-a2-fc-2017": 75}


def test_the_same_seed_draws_the_same_hidden_inputs_in_every_edition() -> None:
    current = {c.id: c for c in get_assignment("cs231n-a2-fc").build_checks(11)}
    for check in get_assignment("cs231n-a2-fc-2017").build_checks(11):
        if check.visibility == "visible":
            continue  # the notebooks' own cases, seed or not
        theirs = {probe.label: probe for probe in current[check.id].probes}
        for ours in check.probes:
            same = theirs[ours.label].inputs
            assert all(ours.inputs[k].tobytes() == same[k].tobytes() for k in ours.inputs), check.id


# The second seed is a grading more per edition: in the full run only.
@pytest.mark.parametrize("seed", [7, pytest.param(20261122, marks=pytest.mark.slow)])
@pytest.mark.parametrize("edition", sorted(CORRECT))
def test_correct_code_of_each_edition_gets_full_marks_in_it(edition: str, seed: int, tmp_path: Path) -> None:
    report = grade(folder_of(CORRECT[edition], tmp_path), edition, seed)
    assert [c.id for c in report.checks if c.status != "passed"] == []
    assert report.score == report.max_score and report.notes == []


@pytest.mark.parametrize(
    "fixture, edition, theirs, ours",
    [
        ("correct_2018", "cs231n-a2-fc", "`dropout=`, the 2018 to 2020 API", "uses `dropout_keep_ratio=`"),
        (
            "correct_2017",
            "cs231n-a2-fc-2018",
            "the probability of dropping a unit",
            "the probability of keeping",
        ),
        ("correct_course", "cs231n-a2-fc-2017", "`dropout_keep_ratio=`", "uses `dropout=`"),
    ],
)
def test_code_of_another_edition_is_told_so_in_one_line(
    fixture: str, edition: str, theirs: str, ours: str, tmp_path: Path
) -> None:
    report = grade(folder_of(fixture, tmp_path), edition)
    assert report.score < report.max_score
    (note,) = report.notes
    assert theirs in note and ours in note and "\n" not in note
    failing_models = [c for c in report.checks if c.target.startswith("fc_net.") and c.status != "passed"]
    assert failing_models
    assert all(c.message.count(note) == 1 for c in failing_models)
    passing = [c for c in report.checks if c.status == "passed"]
    assert all(note not in c.message for c in passing)


def test_the_edition_is_read_from_the_signature_only() -> None:
    source = (buggy.CORRECT_COURSE / "fc_net.py").read_bytes()
    assert edition_of_source(source) is EDITIONS["cs231n-a2-fc"]
    assert edition_of_source(b"def broken(:\n") is None
    old_api = (
        b"class FullyConnectedNet:\n    def __init__(self, hidden_dims, dropout=0, use_batchnorm=False):\n"
    )
    assert edition_of_source(old_api + b"        pass\n") is EDITIONS["cs231n-a2-fc-2017"]
    assert edition_mismatch(source, EDITIONS["cs231n-a2-fc"]) is None
    assert edition_mismatch(None, EDITIONS["cs231n-a2-fc"]) is None


def test_a_2017_dropout_that_keeps_with_p_is_named_for_that_edition(tmp_path: Path) -> None:
    """The 2021 layer in a 2017 course reads p the other way round: named with the 2017 words."""
    report = grade(folder_of("correct_2018", tmp_path), "cs231n-a2-fc-2017")
    forward = next(c for c in report.checks if c.id == "layers.dropout_forward.random")
    assert "dropout_p_is_keep_probability" in forward.diagnosis
    assert "probability of DROPPING a unit" in forward.message
