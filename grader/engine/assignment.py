"""What the engine needs to know of an assignment: its checks, reference, mistakes and package names."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grader.engine.checks import Check, Mutant


@dataclass(frozen=True)
class Assignment:
    name: str
    title: str
    package: str  # the package the students' imports name (cs231n)
    package_aliases: tuple[str, ...]  # other names of the same package in other courses (daseCV)
    questions: tuple[str, ...]
    mistakes: Mapping[str, str]  # mistake code -> an explanation a student can act on
    mutants: Sequence[Mutant]  # several variants may share a mistake code
    build_checks: Callable[[int], list[Check]]
    reference_modules: Callable[[], Any]
    # Lines for the whole report, from the graded files' source (read, never run): another edition's API.
    notes: Callable[[Mapping[str, bytes]], list[str]] = lambda files: []
    # A bug costs points once (the default); cascading also costs them in every check that relies on it.
    cascading: bool = False
