"""Comparing one output with its expected value: the course's relative error, and where it is worst."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

WORST_ERROR = 1.0  # rel_error never exceeds 1; missing, misshapen or non-finite outputs count as that


@dataclass(frozen=True)
class Comparison:
    """How far `actual` is from `expected`; `problem` is set when they cannot be compared at all."""

    error: float
    worst_index: tuple[int, ...] | None = None
    expected_value: float | None = None
    actual_value: float | None = None
    problem: str | None = None
    note: str | None = None  # said even when it passes: equal values in another shape than the docstring's

    def passes(self, threshold: float) -> bool:
        return self.problem is None and self.error <= threshold


def rel_error(x: np.ndarray, y: np.ndarray) -> float:
    """The course's relative error: max(|x - y| / max(1e-8, |x| + |y|))."""
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)), initial=0.0))


def only_singleton_axes_differ(actual: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    """(1, D) against (D,): the same values with extra LEADING axes of length one, which broadcast as the
    docstring's shape does. (D, 1) does not ((N, D) + (D, 1) is another array, or an error)."""
    extra = len(actual) - len(expected)
    return extra > 0 and actual[extra:] == expected and all(d == 1 for d in actual[:extra])


def shape_note(actual: tuple[int, ...], expected: tuple[int, ...]) -> str:
    """What a student is told of an output compared by value across extra leading axes of length one."""
    return f"shape {actual}, where the docstring asks for {expected}; compared by value"


def compare(actual: np.ndarray | None, expected: np.ndarray) -> Comparison:
    """The comparison of a student's output with the reference's, elementwise in float64."""
    if actual is None:
        return Comparison(WORST_ERROR, problem="missing")
    if actual.shape != expected.shape:
        if not only_singleton_axes_differ(actual.shape, expected.shape):
            return Comparison(WORST_ERROR, problem=f"has shape {actual.shape}, expected {expected.shape}")
        note = shape_note(actual.shape, expected.shape)
        return replace(compare(actual.reshape(expected.shape), expected), note=note)
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    if a.size == 0:
        return Comparison(0.0)
    both_nonfinite = ~np.isfinite(e) & ~np.isfinite(a) & ((a == e) | (np.isnan(a) & np.isnan(e)))
    if np.any(~np.isfinite(a) & ~both_nonfinite):
        index = tuple(int(i) for i in np.unravel_index(int(np.argmax(~np.isfinite(a))), a.shape))
        return Comparison(WORST_ERROR, worst_index=index, problem="contains NaN or inf")
    if np.any(~np.isfinite(e) & ~both_nonfinite):
        return Comparison(WORST_ERROR, problem="is finite where the expected value is not")
    a_finite, e_finite = np.where(both_nonfinite, 0.0, a), np.where(both_nonfinite, 0.0, e)
    errors = np.abs(a_finite - e_finite) / np.maximum(1e-8, np.abs(a_finite) + np.abs(e_finite))
    flat = int(np.argmax(errors))
    index = tuple(int(i) for i in np.unravel_index(flat, errors.shape))
    return Comparison(
        float(errors.reshape(-1)[flat]),
        worst_index=index,
        expected_value=float(e.reshape(-1)[flat]),
        actual_value=float(a.reshape(-1)[flat]),
    )


def agrees(actual: np.ndarray | None, expected: np.ndarray, threshold: float) -> bool:
    """Whether two outputs tell the same story: the same shape, non-finite values (NaN or inf, of any
    kind) at the same positions, and the finite ones within `threshold`. Used to recognise a known
    mistake, whose symptom may be an overflow."""
    if actual is None:
        return False
    if actual.shape != expected.shape:
        if not only_singleton_axes_differ(actual.shape, expected.shape):
            return False
        actual = actual.reshape(expected.shape)
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    finite = np.isfinite(a)
    if not np.array_equal(finite, np.isfinite(e)):
        return False
    return rel_error(a[finite], e[finite]) <= threshold
