"""Checks, the trusted context they are judged in, and the generic judge "agrees with the reference"."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from grader.engine.compare import WORST_ERROR, Comparison, agrees, compare
from grader.engine.outputs import ProbeOutcome
from grader.engine.probes import Probe
from sandbox import recipes

Visibility = Literal["visible", "hidden"]
DEFAULT_THRESHOLD = 1e-6  # equivalent correct formulas agree to ~1e-10 in float64; known mistakes are > 1e-3
MUTANT_MATCH_THRESHOLD = 1e-6


@dataclass
class Judgement:
    """What a judge decided: the share of the points, errors per output, and what to tell the student."""

    fraction: float
    errors: dict[str, float] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)
    where: dict[str, list[str]] = field(default_factory=dict)  # code -> the outputs that show it, if not all

    def diagnose(self, found: Mapping[str, Sequence[str]]) -> None:
        """Add the known mistakes found, with where they show when only some outputs do."""
        for code, places in found.items():
            if code not in self.diagnosis:
                self.diagnosis.append(code)
            if places:
                self.where[code] = list(places)


class Judge(Protocol):
    def __call__(self, check: Check, outcomes: Sequence[ProbeOutcome], context: TrustedContext) -> Judgement:
        """Judge the outcomes of the check's probes."""
        ...


@dataclass(frozen=True)
class Mutant:
    """A known mistake, as a variant of the reference: `build` turns the reference modules into it."""

    code: str
    targets: tuple[str, ...]
    evidence: tuple[str, ...]  # output names; "grad_*" stands for every output of that prefix
    build: Callable[[Any], Any]
    # Outputs that sum the mistake over several places (the loss over every layer's penalty): when some
    # places show the mistake and the others are right, such an output matches neither, and that is fine.
    aggregates: tuple[str, ...] = ()

    def evidence_in(self, names: Iterable[str]) -> list[str]:
        """The evidence outputs among `names`, prefixes expanded."""
        prefixes = tuple(e[:-1] for e in self.evidence if e.endswith("*"))
        return [n for n in names if n in self.evidence or (prefixes and n.startswith(prefixes))]


@dataclass(frozen=True)
class Check:
    id: str
    target: str
    question: str
    points: float
    visibility: Visibility
    summary: str
    probes: tuple[Probe, ...]
    judge: Judge
    depends_on: tuple[str, ...] = ()
    # Probes run in the sandbox but never scored: the course's architecture composed from the student's
    # own layers, against which a model is judged when those layers fail their own checks.
    baselines: tuple[Probe, ...] = ()  # one group of len(probes) per way of composing
    # What this side adds to a baseline's outputs before they are compared (the L2 penalty: the
    # sandbox composes the layers, nothing of the model's own arithmetic runs there).
    complete_baseline: Callable[[Probe, Mapping[str, np.ndarray]], Mapping[str, np.ndarray]] | None = None


class TrustedContext:
    """Runs recipes on the reference and on its mutants, on this side of the boundary, with caching."""

    def __init__(self, reference: Any, mutants: Sequence[Mutant], *, isolate: bool = True) -> None:
        self.reference = reference
        self.mutants = mutants
        # A bug costs points once, where it lives: a backward pass exact for its own forward, and a model
        # right for its own layers, keep their points. False: everything is judged against the reference.
        self.isolate = isolate
        self._cache: dict[tuple[str, int], tuple[Probe, recipes.RecipeResult | None]] = {}
        self.baselines: dict[str, Sequence[ProbeOutcome]] = {}  # check id -> outcomes of its baselines
        self.failing_targets: set[str] = set()  # targets whose own checks failed (known before models)

    def own_layers_expected(self, check: Check) -> list[list[Mapping[str, np.ndarray]]]:
        """What the check's probes give with the student's own layers, one list per way of composing
        them, when some of those layers fail their own checks; none when the model must match the
        reference. A composition that did not run, gave non-finite values where the reference's are
        finite, or a constant where the reference's vary (layers that return zeros) tells nothing."""
        failing = any(target in self.failing_targets for target in check.depends_on)
        baselines = self.baselines.get(check.id, ())
        if not self.isolate or not failing or not check.probes or len(baselines) % len(check.probes):
            return []
        references = [self.expected(probe).arrays for probe in check.probes]
        usable = []
        for start in range(0, len(baselines), len(check.probes)):
            group = baselines[start : start + len(check.probes)]
            if not all(outcome.ran for outcome in group):
                continue
            arrays = [
                check.complete_baseline(probe, outcome.arrays) if check.complete_baseline else outcome.arrays
                for probe, outcome in zip(check.probes, group, strict=True)
            ]
            if all(informative(a, r) for a, r in zip(arrays, references, strict=True)):
                usable.append(arrays)
        return usable

    def failing_of(self, check: Check) -> list[str]:
        return [target for target in check.depends_on if target in self.failing_targets]

    def run(
        self, modules: Any, probe: Probe, options: Mapping[str, Any] | None = None
    ) -> recipes.RecipeResult:
        with np.errstate(all="ignore"):
            return recipes.RECIPES[probe.recipe](modules, probe.inputs, dict(options or probe.options))

    def expected(self, probe: Probe) -> recipes.RecipeResult:
        result = self._cached("reference", probe, lambda: self.reference)
        assert result is not None, "the reference must run every probe of the catalog"
        return result

    def mutant_result(self, index: int, probe: Probe) -> recipes.RecipeResult | None:
        """The outputs of mutant `index` on the probe, or None when that mistake makes the code raise."""
        return self._cached(f"mutant{index}", probe, lambda: self.mutants[index].build(self.reference))

    def _cached(self, key: str, probe: Probe, modules: Callable[[], Any]) -> recipes.RecipeResult | None:
        # Keyed by identity (probes hold arrays, so they are not hashable); the entry keeps the probe
        # alive so that its id cannot be reused by another probe while the entry exists.
        slot = (key, id(probe))
        if slot not in self._cache:
            try:
                result: recipes.RecipeResult | None = self.run(modules(), probe)
            except Exception:
                if key == "reference":
                    raise
                result = None
            self._cache[slot] = (probe, result)
        return self._cache[slot][1]

    def matching_mutants(
        self, target: str, probes: Sequence[Probe], outcomes: Sequence[ProbeOutcome]
    ) -> dict[str, list[str]]:
        """The known mistakes the student's outputs reproduce, each with the outputs that show it when
        others agree with the reference instead (a mistake made in some places only)."""
        found: dict[str, list[str]] = {}
        for index, mutant in enumerate(self.mutants):
            if target not in mutant.targets or mutant.code in found:
                continue
            where = self._reproduces(index, probes, outcomes)
            if where is not None:
                found[mutant.code] = where
        return found

    def _reproduces(
        self, index: int, probes: Sequence[Probe], outcomes: Sequence[ProbeOutcome]
    ) -> list[str] | None:
        """None when mutant `index` does not explain the outputs; else where it shows, if not everywhere.

        Output by output, each evidence output must agree with the mutant or with the reference (or, for
        an aggregate, with neither), and at least one must agree with the mutant where the mutant and
        the reference differ."""
        mutant = self.mutants[index]
        shown: list[str] = []
        present = partial = False  # an output the student did return must show the mistake
        for probe, outcome in zip(probes, outcomes, strict=True):
            mutated = self.mutant_result(index, probe) if outcome.ran else None
            if mutated is None:
                continue
            expected = self.expected(probe).arrays
            for name in mutant.evidence_in(expected):
                variant, actual = mutated.arrays.get(name), outcome.arrays.get(name)
                if variant is None and actual is not None:
                    continue  # the variant left this output out; the student's value says nothing about it
                key = f"{probe.label}:{name}" if len(probes) > 1 else name
                observable = variant is None or not agrees(variant, expected[name], DEFAULT_THRESHOLD)
                if variant is None or agrees(actual, variant, MUTANT_MATCH_THRESHOLD):
                    if observable:
                        shown.append(key)
                        present = present or actual is not None
                elif agrees(actual, expected[name], DEFAULT_THRESHOLD):
                    partial = partial or observable
                elif name not in mutant.aggregates:
                    return None
        if not shown or (partial and not present):
            # Outputs missing on both sides show the mistake only where nothing the student returned
            # contradicts it (a model that leaves out some gradients is not, for that, one that skips
            # its normalization).
            return None
        return shown if partial else []


def informative(composed: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> bool:
    """Whether a composition's outputs can stand in for the reference's: each of them finite where the
    reference's is, and varying where the reference's varies (outputs it does not make are judged as
    missing by the check itself)."""
    common = [name for name in reference if name in composed]
    for name in common:
        expected, value = reference[name], composed[name]
        if value.shape != expected.shape:
            return False
        finite = np.isfinite(expected)
        if not np.all(np.isfinite(value[finite])):
            return False
        if spread(expected[finite]) > 0 and not spread(value[finite]) > 0:
            return False
    return bool(common)


def spread(values: np.ndarray) -> float:
    return float(values.max() - values.min()) if values.size else 0.0


def merge_same_cause(described: Sequence[tuple[str, str]]) -> list[str]:
    """One line per distinct finding: outputs wrong in exactly the same way are named together."""
    keys: dict[str, list[str]] = {}
    for key, finding in described:
        keys.setdefault(finding, []).append(key)
    return [f"{', '.join(names)}{finding}" for finding, names in keys.items()]


def output_key(check: Check, probe: Probe, name: str) -> str:
    return f"{probe.label}:{name}" if len(check.probes) > 1 else name


def describe(key: str, comparison: Comparison, threshold: float, visible: bool) -> str:
    """One line a student can act on; expected values are shown for visible checks only."""
    if comparison.problem is not None:
        where = f" at index {list(comparison.worst_index)}" if comparison.worst_index else ""
        return f"{key} {comparison.problem}{where}"
    line = f"{key}: relative error {comparison.error:.2e} is above {threshold:.0e}"
    if comparison.worst_index:
        line += f", worst at index {list(comparison.worst_index)}"
    if visible and comparison.expected_value is not None:
        line += f" (expected {comparison.expected_value:.8g}, got {comparison.actual_value:.8g})"
    return line


STRUCTURAL_CODES = {"grad_": "missing_grads", "param_": "missing_params"}


def own_layers_note(failing: Sequence[str]) -> str:
    """Why a model check was judged against the student's own layers, composed."""
    one = len(failing) == 1
    return (
        f"judged against the course's architecture built from your own layer functions, because "
        f"{', '.join(failing)} {'fails its' if one else 'fail their'} own checks "
        f"({'it loses' if one else 'they lose'} those points there, not here)"
    )


@dataclass(frozen=True)
class AgreesWithReference:
    """Every output the reference produces must be there, with its shape, within its threshold."""

    thresholds: Mapping[str, float] = field(default_factory=dict)
    default: float = DEFAULT_THRESHOLD
    ignore: tuple[str, ...] = ()  # outputs another check scores (a backward check's forward output)
    only: tuple[str, ...] = ()  # when set, the only outputs scored

    def scores(self, name: str) -> bool:
        return name not in self.ignore and (not self.only or name in self.only)

    def __call__(self, check: Check, outcomes: Sequence[ProbeOutcome], context: TrustedContext) -> Judgement:
        expected = [context.expected(probe).arrays for probe in check.probes]
        judgement = self.against(check, outcomes, expected)
        for own in context.own_layers_expected(check) if judgement.fraction < 1.0 else []:
            # Only the reference's outputs count, with the values the student's own layers give.
            composed = [
                {name: values[name] for name in reference if name in values}
                for reference, values in zip(expected, own, strict=True)
            ]
            alternative = self.against(check, outcomes, composed, names_from=expected)
            if alternative.fraction > judgement.fraction:
                alternative.lines.insert(0, own_layers_note(context.failing_of(check)))
                judgement = alternative
        if judgement.fraction < 1.0:
            found = context.matching_mutants(check.target, check.probes, outcomes)
            if found:  # a known mistake explains the missing outputs too: name it, not their absence
                judgement.diagnosis = [c for c in judgement.diagnosis if c not in STRUCTURAL_CODES.values()]
            judgement.diagnose(found)
        judgement.diagnosis = list(dict.fromkeys(judgement.diagnosis))
        return judgement

    def against(
        self,
        check: Check,
        outcomes: Sequence[ProbeOutcome],
        expected_arrays: Sequence[Mapping[str, np.ndarray]],
        names_from: Sequence[Mapping[str, np.ndarray]] | None = None,
    ) -> Judgement:
        """The share of the scored outputs that agree with `expected_arrays`, probe by probe."""
        judgement = Judgement(fraction=0.0)
        passed = total = 0
        missing: list[str] = []  # one line for all of them: they share a cause (names, or an early return)
        described: list[tuple[str, str]] = []  # (output, what is wrong with it)
        notes: list[tuple[str, str]] = []  # (output, what is worth knowing although it passes)
        for index, (probe, outcome) in enumerate(zip(check.probes, outcomes, strict=True)):
            for name in (names_from or expected_arrays)[index]:
                if not self.scores(name):
                    continue
                total += 1
                key = output_key(check, probe, name)
                actual = outcome.arrays.get(name) if outcome.ran else None
                expected = expected_arrays[index].get(name)
                if expected is None:
                    judgement.errors[key] = WORST_ERROR
                    continue
                comparison = compare(actual, expected)
                threshold = self.thresholds.get(name, self.default)
                judgement.errors[key] = comparison.error
                if comparison.note and outcome.ran:
                    notes.append((key, f": {comparison.note}"))
                if comparison.passes(threshold):
                    passed += 1
                    continue
                if not outcome.ran:
                    continue
                reason = outcome.invalid.get(name)
                if reason is None and actual is None:
                    missing.append(key)
                else:
                    line = (
                        f"{key} {reason}"
                        if reason
                        else describe(key, comparison, threshold, check.visibility == "visible")
                    )
                    described.append((key, line[len(key) :]))
                judgement.diagnosis.extend(
                    code
                    for prefix, code in STRUCTURAL_CODES.items()
                    if actual is None and name.startswith(prefix) and reason is None
                )
        judgement.lines += merge_same_cause(notes) + merge_same_cause(described)
        if missing:
            judgement.lines.insert(0, f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing")
        judgement.fraction = passed / total if total else 0.0
        return judgement
