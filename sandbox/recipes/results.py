"""Runs in a probe's process (on the student's values) and in the grader (on the reference's), trusting
neither: raw outputs of one probe, copied into base-class numeric arrays.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

Arrays = dict[str, np.ndarray]
JsonDict = dict[str, Any]

SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
MAX_OUTPUTS = 200


class InvalidOutput(Exception):
    """A value the student's code returned cannot be turned into a plain numeric array."""


class RecipeResult:
    """Raw outputs of one probe; `invalid` says why an output could not be recorded."""

    def __init__(self) -> None:
        self.arrays: Arrays = {}
        self.invalid: dict[str, str] = {}

    def record(self, name: str, value: Any) -> None:
        if len(self.arrays) + len(self.invalid) >= MAX_OUTPUTS:
            return
        try:
            self.arrays[name] = as_plain_array(value)
        except InvalidOutput as exc:
            self.invalid[name] = str(exc)


def as_plain_array(value: Any) -> np.ndarray:
    """A copy of `value` as a base-class numeric ndarray, or InvalidOutput."""
    if isinstance(value, np.ndarray):
        # subok=False strips ndarray subclasses and whatever methods they rigged.
        array = np.array(value, subok=False, copy=True)
    elif isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        array = np.array(float(value))
    elif value is None:
        raise InvalidOutput("returned None (is the function still a stub?)")
    else:
        raise InvalidOutput(f"returned a {type(value).__name__}, expected a numpy array")
    if array.dtype.kind not in "biuf":
        raise InvalidOutput(f"returned an array of dtype {array.dtype}, expected numbers")
    return array


def unpack(value: Any, count: int, what: str) -> tuple[Any, ...]:
    """The values a function returned; `return [out, cache]` works in the notebook, so a list does too."""
    if count == 1 and not isinstance(value, tuple):
        return (value,)
    if not isinstance(value, (tuple, list)) or len(value) != count:
        raise TypeError(f"{what} should return a tuple of {count} values, got {type(value).__name__}")
    return tuple(value)


def fresh(inputs: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    # Every call gets its own copy: student code that writes into its inputs must not change later calls.
    return inputs[name].copy()
