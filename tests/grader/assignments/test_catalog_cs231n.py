"""The cs231n-a2-fc catalog itself: the reference passes it, every known mistake fails it and is named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.assignments import get_assignment
from grader.engine.checks import TrustedContext
from grader.engine.grading import grade_submission
from grader.engine.outputs import ProbeOutcome
from grader.intake.uploads import load_submission
from grader.sandbox_client.executor import LocalProcessExecutor

ASSIGNMENT = get_assignment("cs231n-a2-fc")
REFERENCE = Path(__file__).resolve().parents[3] / "reference"


def test_check_ids_are_unique_and_points_positive() -> None:
    checks = ASSIGNMENT.build_checks(0)
    assert len({c.id for c in checks}) == len(checks)
    assert all(c.points > 0 and c.summary and c.question in ASSIGNMENT.questions for c in checks)
    assert {c.visibility for c in checks} == {"visible", "hidden"}
    assert all(c.target.split(".")[0] in ("layers", "optim", "fc_net") for c in checks)


def test_every_mistake_code_is_explained() -> None:
    codes = {mutant.code for mutant in ASSIGNMENT.mutants}
    assert codes <= set(ASSIGNMENT.mistakes)
    assert all(len(text) > 30 for text in ASSIGNMENT.mistakes.values())


@pytest.mark.parametrize("seed", [0, 99])
def test_the_reference_submitted_as_a_student_gets_full_marks(tmp_path: Path, seed: int) -> None:
    for source, name in (
        ("layers.py", "layers.py"),
        ("optim.py", "optim.py"),
        ("classifiers/fc_net.py", "fc_net.py"),
    ):
        shutil.copyfile(REFERENCE / source, tmp_path / name)
    report = grade_submission(
        load_submission(tmp_path), ASSIGNMENT, seed=seed, executor=LocalProcessExecutor()
    )
    assert [c.id for c in report.checks if c.status != "passed"] == []
    assert report.score == report.max_score


@pytest.mark.parametrize("index", range(len(ASSIGNMENT.mutants)), ids=lambda i: ASSIGNMENT.mutants[i].code)
def test_each_mutant_fails_some_check_and_is_diagnosed_there(index: int) -> None:
    """Feed a mutant's own outputs to the judges as if a student had produced them."""
    mutant = ASSIGNMENT.mutants[index]
    reference = ASSIGNMENT.reference_modules()
    context = TrustedContext(reference, ASSIGNMENT.mutants)
    mutated_modules = mutant.build(reference)
    diagnosed_on = []
    for check in ASSIGNMENT.build_checks(3):
        if check.target not in mutant.targets:
            continue
        outcomes = []
        for probe in check.probes:
            try:
                result = context.run(mutated_modules, probe)
                outcomes.append(ProbeOutcome(status="ok", arrays=result.arrays, invalid=result.invalid))
            except Exception as exc:  # a mistake may make the code raise
                outcomes.append(ProbeOutcome(status="error", message=repr(exc)))
        judgement = check.judge(check, outcomes, context)
        if judgement.fraction < 1.0 and mutant.code in judgement.diagnosis:
            diagnosed_on.append(check.id)
    assert diagnosed_on, f"no check catches and names {mutant.code}"
