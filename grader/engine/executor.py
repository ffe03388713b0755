"""The executor interface the engine grades through; grader/sandbox_client/ implements it.

An executor turns (plan, submission files) into one validated ProbeOutcome per probe, whatever the
student's code does; only a sandbox that cannot run at all is an exception (SandboxUnavailable).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from grader.engine.outputs import ProbeOutcome
from grader.engine.probes import SandboxPlan

ProgressCallback = Callable[[int, int], None]  # (probes finished, probes in all)


class SandboxUnavailable(Exception):
    """The sandbox could not run at all (not a fault of the submission): never award or change a grade."""


class Executor(Protocol):
    name: str

    def run(
        self, plan: SandboxPlan, files: Mapping[str, bytes], progress: ProgressCallback | None = None
    ) -> list[ProbeOutcome]:
        """One outcome per probe of the plan, in plan order."""
        ...

    def description(self) -> dict[str, str]:
        """What ran the code, for the record of a grading run."""
        ...
