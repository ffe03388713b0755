"""Judges for what cannot be compared with the reference element by element.

Dropout masks, initial weights and trained models differ between correct implementations, so these
checks test properties instead: statistics of the mask, its consistency between forward and backward,
the student's gradients against finite differences of the student's own loss (formed here, on the
trusted side), and whether the course Solver can overfit a small data set with the student's code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.engine.checks import (
    DEFAULT_THRESHOLD,
    Check,
    Judgement,
    TrustedContext,
    describe,
    merge_same_cause,
    output_key,
    own_layers_note,
)
from grader.engine.compare import (
    WORST_ERROR,
    Comparison,
    compare,
    only_singleton_axes_differ,
    rel_error,
    shape_note,
)
from grader.engine.outputs import ProbeOutcome
from grader.engine.probes import Probe
from sandbox import recipes


class Criteria:
    """Named pass/fail criteria with an error each; the check's share of points is the share passed."""

    def __init__(self, check: Check) -> None:
        self.check = check
        self.judgement = Judgement(fraction=0.0)
        self.passed = 0
        self.total = 0
        self.missing: list[str] = []  # said in one line: missing outputs share a cause
        self.findings: list[tuple[str, str]] = []  # (output, what is wrong), merged when alike

    def add(self, key: str, error: float, ok: bool, line: str = "") -> None:
        self.total += 1
        self.judgement.errors[key] = min(float(error), WORST_ERROR) if np.isfinite(error) else WORST_ERROR
        if ok:
            self.passed += 1
        elif line:
            self.findings.append((key, line[len(key) :]) if line.startswith(key) else ("", line))

    def output(self, key: str, comparison: Comparison, threshold: float) -> None:
        if comparison.note:
            self.judgement.lines.append(f"{key}: {comparison.note}")
        if comparison.problem == "missing":
            self.missing.append(key)
            self.add(key, comparison.error, False)
            return
        self.add(
            key,
            comparison.error,
            comparison.passes(threshold),
            describe(key, comparison, threshold, self.check.visibility == "visible"),
        )

    def diagnose(self, code: str) -> None:
        if code not in self.judgement.diagnosis:
            self.judgement.diagnosis.append(code)

    def done(self) -> Judgement:
        self.judgement.lines += merge_same_cause(self.findings)
        if self.missing:
            verb = "is" if len(self.missing) == 1 else "are"
            self.judgement.lines.insert(0, f"{', '.join(self.missing)} {verb} missing")
        self.judgement.fraction = self.passed / self.total if self.total else 0.0
        return self.judgement


def array(outcome: ProbeOutcome, name: str) -> np.ndarray | None:
    value = outcome.arrays.get(name) if outcome.ran else None
    return None if value is None else value.astype(np.float64)


def close(a: np.ndarray | None, b: np.ndarray, threshold: float = 1e-7) -> bool:
    return (
        a is not None and a.shape == b.shape and bool(np.all(np.isfinite(a))) and rel_error(a, b) <= threshold
    )


def keep_rate_tolerance(p: float, size: int) -> float:
    """Six standard deviations of the kept fraction of a correct mask, and never below 0.01."""
    return max(0.01, 6 * float(np.sqrt(p * (1 - p) / size)))


@dataclass(frozen=True)
class BackwardPass:
    """A backward pass's gradients must agree with the reference's, or be the exact gradient of the
    student's own forward pass: central differences of sum(out * dout), formed here from the values the
    sandbox returns at the inputs this side moved. A forward bug then costs the backward nothing
    wherever the two can be told apart (a backward that reads a wrong cache cannot be)."""

    threshold: float = DEFAULT_THRESHOLD
    numeric_threshold: float = 1e-5

    def __call__(self, check: Check, outcomes: Sequence[ProbeOutcome], context: TrustedContext) -> Judgement:
        criteria = Criteria(check)
        credited: list[str] = []
        for probe, outcome in zip(check.probes, outcomes, strict=True):
            expected = context.expected(probe).arrays
            inputs = ["x", *probe.options.get("extra_args", [])]
            # Only a wrong forward pass can excuse a backward pass that is not the reference's.
            own_forward_differs = context.isolate and not compare(
                outcome.arrays.get("out") if outcome.ran else None, expected["out"]
            ).passes(self.threshold)
            for grad, input_name in zip(probe.options["grads"], inputs, strict=True):
                key = output_key(check, probe, grad)
                actual = outcome.arrays.get(grad) if outcome.ran else None
                comparison = compare(actual, expected[grad])
                if (
                    own_forward_differs
                    and not comparison.passes(self.threshold)
                    and self.own_gradient(probe, outcome, grad, input_name)
                ):
                    credited.append(key)
                    comparison = Comparison(0.0)
                criteria.output(key, comparison, self.threshold)
        if credited:
            forward = check.probes[0].options["function"]
            criteria.judgement.lines.insert(
                0,
                f"{', '.join(credited)} differ from the reference but are the exact gradient of your own "
                f"{forward}, so its mistake costs points in {forward}'s checks only",
            )
        judgement = criteria.done()
        if judgement.fraction < 1.0:
            judgement.diagnose(context.matching_mutants(check.target, check.probes, outcomes))
        return judgement

    def own_gradient(self, probe: Probe, outcome: ProbeOutcome, grad: str, input_name: str) -> bool:
        """Whether the student's gradient gives the directional derivatives of the student's own forward
        (central differences along the directions recipes.direction draws, on both sides alike)."""
        spec = probe.sandbox_options.get("directions")
        plus, minus, analytic = array(outcome, "plus"), array(outcome, "minus"), array(outcome, grad)
        shape = probe.inputs[input_name].shape
        if spec is None or input_name not in spec["names"] or analytic is None or analytic.shape != shape:
            return False
        count, index = int(spec["count"]), spec["names"].index(input_name)
        if plus is None or minus is None or not plus.shape == minus.shape == (count * len(spec["names"]),):
            return False
        if not np.any(plus != minus):
            return False  # a forward that no input moves (a constant) is no forward pass
        rows = slice(index * count, (index + 1) * count)
        numeric = (plus[rows] - minus[rows]) / (2 * float(probe.sandbox_options["h"]))
        along = np.array(
            [np.sum(analytic * recipes.direction(int(spec["seed"]), index, k, shape)) for k in range(count)]
        )
        if not (np.all(np.isfinite(numeric)) and np.all(np.isfinite(along))):
            return False
        floor = 1e-3 * float(np.max(np.abs(numeric)) + np.max(np.abs(along))) + 1e-12
        error = np.abs(along - numeric) / np.maximum(floor, np.abs(along) + np.abs(numeric))
        return bool(np.max(error) <= self.numeric_threshold)


def keep_of(probe: Probe) -> float:
    """The probability of keeping a unit, whatever dropout's p means in the edition."""
    return float(probe.options.get("keep", probe.options["param"]["p"]))


@dataclass(frozen=True)
class DropoutForward:
    """Train mode: each output is 0 or x/keep, and about a share `keep` of the units is kept, each on its
    own. Test mode: out == x. swapped_code names the mistake of reading p the other way round."""

    swapped_code: str = "dropout_p_is_drop_probability"

    def __call__(self, check: Check, outcomes: Sequence[ProbeOutcome], context: TrustedContext) -> Judgement:
        criteria = Criteria(check)
        for probe, outcome in zip(check.probes, outcomes, strict=True):
            x = probe.inputs["x"].astype(np.float64)
            keep, p = keep_of(probe), float(probe.options["param"]["p"])
            out = array(outcome, "out")
            key = output_key(check, probe, "out")
            if out is None or out.shape != x.shape:
                criteria.output(key, compare(out, x), 0.0)
                continue
            if probe.options["passes"][-1][1] == "test":
                criteria.output(key, compare(out, x), 1e-12)
                if any(close(out, x * factor) for factor in {keep, 1 / keep, p, 1 - p} if factor):
                    criteria.diagnose("dropout_test_mode_scaled")
                continue
            self.judge_train(criteria, check, probe, x, out)
        return criteria.done()

    def judge_train(
        self, criteria: Criteria, check: Check, probe: Probe, x: np.ndarray, out: np.ndarray
    ) -> None:
        keep, p = keep_of(probe), float(probe.options["param"]["p"])
        kept = out != 0
        rate = float(kept.mean())
        tolerance = keep_rate_tolerance(keep, x.size)
        criteria.add(
            output_key(check, probe, "keep_rate"),
            abs(rate - keep),
            abs(rate - keep) <= tolerance,
            f"{output_key(check, probe, 'keep_rate')}: {rate:.4f} of the units are kept with p = {p:g}, "
            f"expected about {keep:g}",
        )
        if abs(rate - (1 - keep)) <= tolerance and abs(keep - 0.5) > 2 * tolerance:
            criteria.diagnose(self.swapped_code)
        shared = shared_mask_axis(kept)
        criteria.add(
            output_key(check, probe, "mask_per_element"),
            0.0 if shared is None else WORST_ERROR,
            shared is None,
            f"{output_key(check, probe, 'mask_per_element')}: every {shared} of the mask keeps or drops "
            "all its units together",
        )
        if shared is not None:
            criteria.diagnose("dropout_mask_shared")
        scale_key = output_key(check, probe, "kept_values")
        if not kept.any():
            criteria.add(scale_key, WORST_ERROR, False, f"{scale_key}: every unit was dropped")
            return
        error = rel_error(out[kept], x[kept] / keep)
        criteria.add(
            scale_key,
            error,
            error <= 1e-7,
            f"{scale_key}: kept units should equal x / {keep:g}, x divided by the probability of keeping "
            f"(inverted dropout); relative error {error:.2e}",
        )
        if close(out[kept], x[kept]):
            criteria.diagnose("dropout_not_inverted")


def shared_mask_axis(kept: np.ndarray) -> str | None:
    """ "row" or "column" when most rows (columns) of a 2-d mask are all kept or all dropped, some of
    each: one random number per row or column. Independent units make that all but impossible on the
    checks' inputs (at most 0.8 ** 100 for one row or column); a mask that keeps or drops everything is
    another mistake (the keep-rate criterion's)."""
    if kept.ndim != 2 or min(kept.shape) < 8:
        return None
    for axis, name in ((1, "row"), (0, "column")):
        all_kept, all_dropped = np.all(kept, axis=axis), ~np.any(kept, axis=axis)
        if (all_kept | all_dropped).mean() > 0.5 and all_kept.any() and all_dropped.any():
            return name
    return None


def is_dropout_mask(mask: np.ndarray) -> bool:
    """Some units dropped (zero), the others all scaled alike: a mask, even if its p or scale is wrong
    (those are the forward checks' business); an identity "forward" is not one."""
    kept = mask != 0
    if kept.all() or not kept.any():
        return False
    scale = float(np.median(mask[kept]))
    return scale > 0 and bool(np.all(np.abs(mask[kept] / scale - 1) <= 1e-7))


@dataclass(frozen=True)
class DropoutBackward:
    """dx must be dout times the mask the forward pass used (read off out / x); test mode: dx == dout."""

    def __call__(self, check: Check, outcomes: Sequence[ProbeOutcome], context: TrustedContext) -> Judgement:
        criteria = Criteria(check)
        for probe, outcome in zip(check.probes, outcomes, strict=True):
            x, dout = probe.inputs["x"].astype(np.float64), probe.inputs["dout"].astype(np.float64)
            out, dx = array(outcome, "out"), array(outcome, "dx")
            key = output_key(check, probe, "dx")
            if probe.options["passes"][-1][1] == "test":
                criteria.output(key, compare(dx, dout), 1e-12)
                continue
            if out is None or out.shape != x.shape:
                criteria.add(
                    key, WORST_ERROR, False, f"{key} cannot be checked: dropout_forward gave no usable out"
                )
                continue
            keep = keep_of(probe)
            mask = out / x  # the inputs are bounded away from zero, so out / x is the mask
            if not is_dropout_mask(mask):
                # An identity "forward" would make dx == dout look right: the mask must be a real one first.
                message = "dropout_forward's train-mode output is not x times a dropout mask"
                criteria.add(key, WORST_ERROR, False, f"{key} cannot be checked: {message}")
                continue
            expected = dout * mask
            criteria.output(key, compare(dx, expected), 1e-7)
            if not close(dx, expected) and (close(dx, dout) or close(dx, dout / keep)):
                criteria.diagnose("dropout_backward_ignores_mask")
        return criteria.done()


@dataclass(frozen=True)
class ModelInit:
    """Parameter names and shapes as the reference's; W spread as weight_scale; b, beta zero; gamma one."""

    def __call__(self, check: Check, outcomes: Sequence[ProbeOutcome], context: TrustedContext) -> Judgement:
        criteria = Criteria(check)
        for probe, outcome in zip(check.probes, outcomes, strict=True):
            scale = float(probe.options["model"]["weight_scale"])
            dtype = np.dtype(probe.options["model"].get("dtype", "float64"))
            for name, expected in context.expected(probe).arrays.items():
                self.judge_param(criteria, check, probe, outcome, name, expected, scale, dtype)
        return criteria.done()

    @staticmethod
    def judge_param(
        criteria: Criteria,
        check: Check,
        probe: Probe,
        outcome: ProbeOutcome,
        name: str,
        expected: np.ndarray,
        scale: float,
        dtype: np.dtype[np.generic],
    ) -> None:
        key = output_key(check, probe, name)
        actual = outcome.arrays.get(name) if outcome.ran else None
        if actual is not None and only_singleton_axes_differ(actual.shape, expected.shape):
            criteria.judgement.lines.append(f"{key}: {shape_note(actual.shape, expected.shape)}")
            actual = actual.reshape(expected.shape)
        if actual is None or actual.shape != expected.shape:
            criteria.output(key, compare(actual, expected), 0.0)
            if actual is None and outcome.ran:
                criteria.diagnose("missing_params")
            return
        if actual.dtype != dtype:
            criteria.add(
                key + ".dtype",
                WORST_ERROR,
                False,
                f"{key} has dtype {actual.dtype}, expected {dtype} (the dtype argument)",
            )
        values = actual.astype(np.float64)
        param = name[len("param_") :]
        if param.startswith("W"):
            spread = float(values.std())
            tolerance = max(0.05, 6 / np.sqrt(2 * values.size))
            error = abs(spread / scale - 1)
            criteria.add(
                key,
                error,
                error <= tolerance and abs(float(values.mean())) <= 6 * scale / np.sqrt(values.size),
                f"{key}: standard deviation {spread:.3g}, expected weight_scale = {scale:.3g}",
            )
            if error > tolerance:
                criteria.diagnose("weight_init_scale")
            return
        target = 1.0 if param.startswith("gamma") else 0.0
        error = float(np.max(np.abs(values - target), initial=0.0))
        criteria.add(key, error, error == 0.0, f"{key} should start as all {target:g}")


# A correct loss evaluated at two points is off its exact values by a few ulps of its magnitude (at most
# about one on this catalog's models, over thousands of seeds); their difference quotient inherits that,
# divided by h.
ROUNDING_ULPS = 64
# At a kink of the loss (a ReLU that changes side within the step) a correct derivative is the slope of
# the side the parameter is on, which a one-sided difference gives to within h times the curvature there:
# a tenth of the bend (the difference of the two one-sided slopes, only h times the curvature where the
# loss is smooth), and never more than h times a curvature of 100 (ten times the largest these models'
# losses show along one parameter), however large the bend (a loss that jumps).
KINK_SHARE = 0.1
MAX_CURVATURE = 100.0


def finite_difference_errors(
    analytic: np.ndarray,
    loss: float,
    plus: np.ndarray,
    minus: np.ndarray,
    *,
    h: float,
    threshold: float,
    magnitude: float,
) -> np.ndarray:
    """The error of each analytic derivative against finite differences of the loss at x + h, x and
    x - h: the course's relative error against the central difference (plus - minus) / 2h where that is
    within `threshold`, and otherwise what is left of it once the two ways a correct derivative misses
    the central difference are allowed for, so that correct code stays within `threshold` on every input:

    - rounding: the last bits of a loss of `magnitude` (the trusted side's: a student's loss could be
      made large enough to excuse anything), divided by h, are a floor under the denominator (a
      derivative of 1e-6 is judged by its absolute error, down to what rounding can make);
    - a kink: where a ReLU changes side within the step the central difference mixes the slopes of both
      sides, and a correct derivative is the one-sided difference, (plus - loss) / h or (loss - minus) / h,
      of the side the parameter is on, to within a tenth of the bend and 100 h. Where the loss is smooth
      the bend is h times its curvature, so this credits no derivative further than that from the
      central one."""
    central = (plus - minus) / (2 * h)
    plain = np.abs(analytic - central) / np.maximum(1e-6, np.abs(analytic) + np.abs(central))
    noise = ROUNDING_ULPS * float(np.finfo(np.float64).eps) * max(1.0, magnitude) / h
    floor = max(1e-6, noise / threshold)
    explained = np.abs(analytic - central) / np.maximum(floor, np.abs(analytic) + np.abs(central))
    forward, backward = (plus - loss) / h, (loss - minus) / h
    allowance = np.minimum(KINK_SHARE * np.abs(forward - backward), MAX_CURVATURE * h) / threshold
    for one_sided in (forward, backward):
        # One step instead of two: twice the rounding noise.
        denominator = np.maximum(np.maximum(2 * floor, allowance), np.abs(analytic) + np.abs(one_sided))
        explained = np.minimum(explained, np.abs(analytic - one_sided) / denominator)
    return np.asarray(np.where(plain <= threshold, plain, explained))


@dataclass(frozen=True)
class NumericGradient:
    """The student's gradients against finite differences of the student's own loss (dropout model).

    Probes: "numeric" (model_numeric: loss, grads, losses at +-h) and "scores" (test mode, which must
    agree with the reference because dropout is off at test time).
    """

    h: float
    no_dropout: Mapping[str, Any] = field(default_factory=lambda: {"dropout_keep_ratio": 1})  # the edition's
    threshold: float = 1e-4

    def __call__(self, check: Check, outcomes: Sequence[ProbeOutcome], context: TrustedContext) -> Judgement:
        criteria = Criteria(check)
        numeric_probe, scores_probe = check.probes
        numeric, scores = outcomes
        loss, repeat = array(numeric, "loss"), array(numeric, "repeat")
        scalar_loss = loss is not None and loss.shape == () and bool(np.isfinite(loss)) and float(loss) > 0
        deterministic = (
            scalar_loss
            and loss is not None
            and repeat is not None
            and repeat.shape == ()
            and float(loss) == float(repeat)
        )
        if numeric.ran and scalar_loss and not deterministic:
            criteria.judgement.lines.append(
                "the loss changes between two calls with the same seed, so its gradients cannot be checked: "
                "draw the dropout mask from np.random after np.random.seed(dropout_param['seed'])"
            )
        alternatives = context.own_layers_expected(check)
        own = alternatives[0] if alternatives else None  # dropout models have no normalization: one way
        center = float(loss) if deterministic and loss is not None else None
        magnitude = abs(float(context.expected(numeric_probe).arrays["loss"]))
        used_own = self.judge_gradients(
            criteria, numeric_probe, numeric, center, magnitude, own[0] if own else None
        )
        no_dropout = context.run(
            context.reference,
            numeric_probe,
            {**numeric_probe.options, "model": {**numeric_probe.options["model"], **self.no_dropout}},
        )
        applied = scalar_loss and loss is not None and not close(loss, no_dropout.arrays["loss"], 1e-9)
        criteria.add(
            "dropout_applied",
            0.0 if applied else WORST_ERROR,
            applied,
            "the training loss is missing or equals the loss without dropout: apply dropout after each "
            "hidden ReLU in train mode",
        )
        for name, expected in context.expected(scores_probe).arrays.items():
            actual = scores.arrays.get(name) if scores.ran else None
            comparison = compare(actual, expected)
            if not comparison.passes(1e-6) and own is not None and name in own[1]:
                comparison = compare(actual, own[1][name])  # the student's own layers, composed
                used_own = used_own or comparison.passes(1e-6)
            criteria.output(f"test_mode_{name}", comparison, 1e-6)
        if used_own:
            criteria.judgement.lines.insert(0, own_layers_note(context.failing_of(check)))
        return criteria.done()

    def judge_gradients(
        self,
        criteria: Criteria,
        probe: Probe,
        outcome: ProbeOutcome,
        loss: float | None,
        magnitude: float,
        own: Mapping[str, np.ndarray] | None,
    ) -> bool:
        """Each gradient against finite differences of the student's loss (`loss`: its value at the
        parameters, None when it is not usable; `magnitude`: the reference's), or, where the layers it
        relies on fail their own checks, against the gradients of the course's architecture built from
        them; whether any gradient was credited by the latter."""
        used_own = False
        perturbed = probe.options["perturb"]
        plus, minus = array(outcome, "plus"), array(outcome, "minus")
        if (
            loss is None
            or plus is None
            or minus is None
            or not plus.shape == minus.shape == (len(perturbed),)
        ):
            plus = minus = None
        elif not np.any(plus != minus):
            # A loss that no parameter moves (a constant) would agree with zero gradients: not a loss at all.
            criteria.judgement.lines.append("the loss does not change when any parameter does")
            plus = minus = None
        for name in dict.fromkeys(param for param, _ in perturbed):
            grad = array(outcome, f"grad_{name}")
            key = f"grad_{name}"
            shape = probe.inputs[f"param_{name}"].shape
            if grad is None or grad.shape != shape or plus is None or minus is None or loss is None:
                criteria.add(
                    key,
                    WORST_ERROR,
                    False,
                    f"{key} cannot be checked: it is missing, misshapen, or the loss is not usable",
                )
                if grad is None and outcome.ran:
                    criteria.diagnose("missing_grads")
                continue
            rows = [i for i, (param, _) in enumerate(perturbed) if param == name]
            analytic = grad.reshape(-1)[[perturbed[i][1] for i in rows]]
            error = float(
                np.max(
                    finite_difference_errors(
                        analytic,
                        loss,
                        plus[rows],
                        minus[rows],
                        h=self.h,
                        threshold=self.threshold,
                        magnitude=magnitude,
                    )
                )
            )
            if error > self.threshold and own is not None and close(grad, own.get(key, np.empty(0)), 1e-6):
                error, used_own = (
                    0.0,
                    True,
                )  # the student's model is right; its layers' checks take the points
            criteria.add(
                key,
                error,
                error <= self.threshold,
                f"{key}: relative error {error:.2e} against finite differences of your own loss",
            )
        return used_own


@dataclass(frozen=True)
class Overfits:
    """The course Solver, the student's model and update rule: small data must be learnt by heart.

    The accuracy is measured here, by the reference network with the student's trained parameters.
    """

    min_accuracy: float

    def __call__(self, check: Check, outcomes: Sequence[ProbeOutcome], context: TrustedContext) -> Judgement:
        criteria = Criteria(check)
        (probe,), (outcome,) = check.probes, outcomes
        losses = array(outcome, "loss_history")
        finite = losses is not None and losses.size > 0 and bool(np.all(np.isfinite(losses)))
        criteria.add(
            "loss_finite", 0.0 if finite else WORST_ERROR, finite, "the training loss became NaN or inf"
        )
        accuracy = self.accuracy(probe, outcome, context)
        criteria.add(
            "train_accuracy",
            1 - accuracy,
            accuracy >= self.min_accuracy,
            f"after training, the model classifies {accuracy:.0%} of the training set correctly, expected at "
            f"least {self.min_accuracy:.0%} when overfitting a small data set",
        )
        return criteria.done()

    @staticmethod
    def accuracy(probe: Probe, outcome: ProbeOutcome, context: TrustedContext) -> float:
        """Training accuracy of the trained parameters, or 0 when they are missing or misshapen."""
        params = {
            name: outcome.arrays.get(name)
            for name in context.expected(probe).arrays
            if name.startswith("param_")
        }
        expected = context.expected(probe).arrays
        if not outcome.ran or any(v is None or v.shape != expected[k].shape for k, v in params.items()):
            return 0.0
        model_probe = Probe(
            label="accuracy",
            recipe="model_loss",
            modules=probe.modules,
            inputs={"X": probe.inputs["X_train"], "y": probe.inputs["y_train"], **params},  # type: ignore[dict-item]
            options={"model": probe.options["model"], "ops": ["scores"]},
        )
        scores = context.run(context.reference, model_probe).arrays["scores"]
        if not np.all(np.isfinite(scores)):
            return 0.0
        return float(np.mean(np.argmax(scores, axis=1) == probe.inputs["y_train"]))
