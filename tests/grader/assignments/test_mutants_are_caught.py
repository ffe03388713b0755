"""No mistake is caught by chance: on 20 seeds, the hidden checks of every known mistake's function catch it
and name it. The mistakes are graded as students, on the trusted side (their outputs are the variants'
own, run by the same recipes), so that every seed of every mistake costs a fraction of a second."""

from __future__ import annotations

from functools import cache

import pytest

from grader.assignments import get_assignment
from grader.assignments.cs231n_a2_fc import ASSIGNMENTS
from grader.assignments.cs231n_a2_fc.mutants import JUDGED_MUTANTS
from grader.engine.checks import Check, Judgement, Mutant, TrustedContext
from grader.engine.outputs import ProbeOutcome

ASSIGNMENT = get_assignment("cs231n-a2-fc")
SEEDS = range(20)
MUTANTS = (*ASSIGNMENT.mutants, *JUDGED_MUTANTS)


@cache
def checks_for(seed: int) -> tuple[Check, ...]:
    return tuple(ASSIGNMENT.build_checks(seed))


@cache
def context_for(seed: int) -> TrustedContext:
    """One context per seed: the reference's outputs are computed once for all the mistakes."""
    return TrustedContext(ASSIGNMENT.reference_modules(), MUTANTS)


def as_student(context: TrustedContext, index: int, check: Check) -> list[ProbeOutcome]:
    """What a student whose code is mistake `index` would hand back for the check's probes."""
    outcomes = []
    for probe in check.probes:
        result = context.mutant_result(index, probe)
        if result is None:
            outcomes.append(ProbeOutcome(status="error", message="the variant raised"))
        else:
            outcomes.append(ProbeOutcome(status="ok", arrays=result.arrays, invalid=result.invalid))
    return outcomes


def hidden_judgements(mutant: Mutant, seed: int) -> list[Judgement]:
    context = context_for(seed)
    index = MUTANTS.index(mutant)
    judged = [
        check.judge(check, as_student(context, index, check), context)
        for check in checks_for(seed)
        if check.visibility == "hidden" and check.target in mutant.targets
    ]
    assert judged, f"no hidden check targets {mutant.targets}"
    return judged


@pytest.mark.parametrize("mutant", MUTANTS, ids=[f"{m.code}-{i}" for i, m in enumerate(MUTANTS)])
def test_hidden_checks_catch_and_name_every_mistake_on_every_seed(mutant: Mutant) -> None:
    missed = []
    for seed in SEEDS:
        judgements = hidden_judgements(mutant, seed)
        caught = any(j.fraction < 1.0 for j in judgements)
        named = any(mutant.code in j.diagnosis for j in judgements)
        if not (caught and named):
            missed.append((seed, caught, named))
    assert not missed, f"{mutant.code}: (seed, caught, named) where it slipped through: {missed}"


def test_the_reference_passes_every_hidden_check_on_every_seed() -> None:
    """The other side: the same judging gives the reference itself full marks, so the test can fail."""
    for seed in SEEDS:
        context = context_for(seed)
        for check in checks_for(seed):
            if check.visibility != "hidden" or check.id == "fc_net.training":
                continue
            outcomes = [
                ProbeOutcome(status="ok", arrays=context.expected(p).arrays, invalid={}) for p in check.probes
            ]
            judgement = check.judge(check, outcomes, context)
            assert judgement.fraction == 1.0 and not judgement.diagnosis, (seed, check.id, judgement.lines)


@pytest.mark.parametrize("edition", sorted(set(ASSIGNMENTS) - {ASSIGNMENT.name}))
def test_the_older_editions_catch_and_name_every_mistake_they_have_checks_for(edition: str) -> None:
    assignment = ASSIGNMENTS[edition]
    missed = []
    for seed in range(5):
        checks = assignment.build_checks(seed)
        context = TrustedContext(assignment.reference_modules(), assignment.mutants)
        for index, mutant in enumerate(assignment.mutants):
            hidden = [c for c in checks if c.visibility == "hidden" and c.target in mutant.targets]
            judgements = [c.judge(c, as_student(context, index, c), context) for c in hidden]
            if hidden and not any(j.fraction < 1.0 and mutant.code in j.diagnosis for j in judgements):
                missed.append((mutant.code, seed))
    assert not missed
