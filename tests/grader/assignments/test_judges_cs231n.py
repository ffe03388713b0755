"""The property judges of cs231n-a2-fc on the inputs that are hardest for them: fc_net.dropout's gradients
against finite differences of the student's own loss give correct code full marks on every seed (the
seeds below once cost it half a point) and still refute wrong gradients there."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pytest

from grader import EXAMPLE_SUBMISSION
from grader.assignments import get_assignment
from grader.assignments.cs231n_a2_fc.judges import finite_difference_errors
from grader.engine.checks import Check, Judgement, TrustedContext
from grader.engine.grading import grade_submission
from grader.engine.outputs import ProbeOutcome
from grader.intake.uploads import load_submission
from grader.sandbox_client.executor import LocalProcessExecutor

CHECK = "fc_net.dropout"
H = 1e-6
THRESHOLD = 1e-4
# Seeds on which a correct model lost fc_net.dropout's half point for one gradient (1 of its 8 criteria),
# before finite differences knew of rounding and of ReLUs that change side within the step. The kink is in
# the inputs; how near the threshold rounding comes depends on numpy's arithmetic too, so the synthetic
# tests at the end show both on their own.
KINK_SEED = 3271  # grad_b1: 2.05e-02, a hidden unit changes side between b1[4] - h and b1[4] + h
TINY_SEED = 4405  # grad_W3: 1.05e-04, W3[12]'s derivative is 3e-7, its central difference off by 1e-10
EXAMPLE_TINY_SEED = 2586  # the example submission's grad_W3: 1.07e-04 (a derivative of 1.1e-6)


def dropout_check(edition: str, seed: int) -> tuple[Check, TrustedContext]:
    assignment = get_assignment(edition)
    (check,) = [c for c in assignment.build_checks(seed) if c.id == CHECK]
    return check, TrustedContext(assignment.reference_modules(), assignment.mutants)


def reference_as_student(check: Check, context: TrustedContext) -> list[dict[str, np.ndarray]]:
    """The reference's own outputs, as a correct student's sandbox would return them."""
    return [dict(context.expected(probe).arrays) for probe in check.probes]


def judged(check: Check, context: TrustedContext, arrays: list[dict[str, np.ndarray]]) -> Judgement:
    outcomes = [ProbeOutcome(status="ok", arrays=a) for a in arrays]
    return check.judge(check, outcomes, context)


def with_entry(
    arrays: Mapping[str, np.ndarray], grad: str, index: int, value: float
) -> dict[str, np.ndarray]:
    """The outputs with one entry of a gradient replaced."""
    changed = dict(arrays)
    changed[grad] = arrays[grad].copy()
    changed[grad].reshape(-1)[index] = value
    return changed


def perturbation(check: Check, name: str, index: int) -> int:
    """The row of plus and minus that moves parameter `name` at flat `index`."""
    return [list(p) for p in check.probes[0].options["perturb"]].index([name, index])


@pytest.mark.parametrize("edition", ["cs231n-a2-fc", "cs231n-a2-fc-2018"])
@pytest.mark.parametrize("seed", [KINK_SEED, TINY_SEED])
def test_a_correct_model_gets_full_marks_on_the_seeds_that_once_cost_it_half_a_point(
    edition: str, seed: int
) -> None:
    check, context = dropout_check(edition, seed)
    judgement = judged(check, context, reference_as_student(check, context))
    assert judgement.fraction == 1.0, judgement.lines
    assert max(v for k, v in judgement.errors.items() if k.startswith("grad_")) < THRESHOLD / 10


def test_the_example_submission_gets_full_marks_where_its_rounding_once_cost_it_half_a_point() -> None:
    """Its own outputs, from the sandbox (local processes): its rounding differs from the reference's."""
    assignment = get_assignment("cs231n-a2-fc")
    only_dropout = dataclasses.replace(
        assignment, build_checks=lambda seed: [c for c in assignment.build_checks(seed) if c.id == CHECK]
    )
    report = grade_submission(
        load_submission(EXAMPLE_SUBMISSION),
        only_dropout,
        seed=EXAMPLE_TINY_SEED,
        executor=LocalProcessExecutor(),
    )
    (dropout,) = report.checks
    assert dropout.status == "passed", dropout.message
    assert dropout.score == dropout.max_score == 4


def test_at_a_kink_a_gradient_off_the_slope_of_its_own_side_is_still_wrong() -> None:
    """There the correct derivative is the loss's slope on the side of the kink the parameter is on (the
    backward difference here), not the central difference; 3% off it, or zero, is a wrong gradient."""
    check, context = dropout_check("cs231n-a2-fc", KINK_SEED)
    numeric, scores = reference_as_student(check, context)
    row = perturbation(check, "b1", 4)
    loss, plus, minus = float(numeric["loss"]), numeric["plus"][row], numeric["minus"][row]
    forward, backward = (plus - loss) / H, (loss - minus) / H
    assert abs(forward - backward) > 1e-2  # the kink: the one-sided slopes differ by 8%
    assert numeric["grad_b1"][4] == pytest.approx(backward, rel=1e-6)
    for wrong in (0.97 * backward, 1.03 * backward, 0.0):
        judgement = judged(check, context, [with_entry(numeric, "grad_b1", 4, wrong), scores])
        assert judgement.fraction == 7 / 8, wrong
        assert judgement.errors["grad_b1"] > THRESHOLD


def test_a_tiny_derivative_is_still_judged_by_its_absolute_error() -> None:
    check, context = dropout_check("cs231n-a2-fc", TINY_SEED)
    numeric, scores = reference_as_student(check, context)
    exact = float(numeric["grad_W3"].reshape(-1)[12])
    assert abs(exact) < 1e-6
    for wrong in (0.0, 2 * exact, -exact):
        judgement = judged(check, context, [with_entry(numeric, "grad_W3", 12, wrong), scores])
        assert judgement.fraction == 7 / 8, wrong
        assert "grad_W3: relative error" in "\n".join(judgement.lines)


def test_finite_differences_credit_a_kink_only_to_the_slope_of_the_side_the_parameter_is_on() -> None:
    """A loss with a ReLU that turns on at 0.3 h: its derivative at 0 is 0.5, the slope on the left of the
    kink, whatever the central difference (which mixes both slopes, 0.78 and 0.5, to 0.64) says; the
    slope on the right (0.9) and anything off 0.5 by more than 100 h fail. A loss that jumps there excuses
    no more; a loss smooth on the step is judged by the central difference within the threshold."""

    def relu_loss(x: float) -> float:
        return 2.0 + 0.5 * x + 0.4 * max(0.0, x - 0.3 * H)

    def jumping_loss(x: float) -> float:
        return 2.0 + 0.5 * x + (1e-3 if x > 0.3 * H else 0.0)

    def smooth_loss(x: float) -> float:
        return 2.0 + 0.5 * x + 3.0 * x**2

    cases = {
        relu_loss: ((0.5, True), (0.5 + 5e-5, True), (0.9, False), (0.7, False), (0.5 * (1 + 1e-3), False)),
        jumping_loss: ((0.5, True), (0.6, False), (0.5 * (1 + 1e-3), False)),
        smooth_loss: ((0.5, True), (0.5 * (1 + 1e-5), True), (0.5 * (1 + 1e-3), False), (0.9, False)),
    }
    for loss, judged_values in cases.items():
        plus, minus = np.array([loss(H)]), np.array([loss(-H)])
        for analytic, passes in judged_values:
            errors = finite_difference_errors(
                np.array([analytic]), loss(0.0), plus, minus, h=H, threshold=THRESHOLD, magnitude=2.0
            )
            assert (float(errors[0]) <= THRESHOLD) == passes, (loss.__name__, analytic, errors)


def test_the_loss_s_last_bits_do_not_fail_a_tiny_derivative_but_a_wrong_one_fails() -> None:
    """A loss of 3 whose derivative is 1.1e-6, evaluated with 2 ulps of rounding: its central difference is
    off by 2e-4 of the derivative, which the threshold alone would refuse."""
    slope = 1.13e-6
    plus = np.array([3.0 + slope * H])
    minus = np.array([np.nextafter(np.nextafter(3.0 - slope * H, 0.0), 0.0)])
    central = float((plus[0] - minus[0]) / (2 * H))
    assert abs(central - slope) / (2 * slope) > THRESHOLD
    for analytic, passes in ((slope, True), (0.0, False), (2 * slope, False), (-slope, False)):
        errors = finite_difference_errors(
            np.array([analytic]), 3.0, plus, minus, h=H, threshold=THRESHOLD, magnitude=3.0
        )
        assert (float(errors[0]) <= THRESHOLD) == passes, (analytic, errors)
