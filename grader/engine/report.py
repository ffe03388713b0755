"""The grade report: what `grader grade --json` prints and what later stages store."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

CheckStatus = Literal["passed", "failed", "error", "timeout"]


@dataclass
class CheckReport:
    id: str
    target: str
    question: str
    status: CheckStatus
    score: float
    max_score: float
    visibility: str
    message: str
    diagnosis: list[str] = field(default_factory=list)
    errors: dict[str, float] = field(default_factory=dict)


@dataclass
class QuestionReport:
    name: str
    score: float
    max_score: float


@dataclass
class Report:
    assignment: str
    seed: int
    score: float
    max_score: float
    questions: list[QuestionReport]
    checks: list[CheckReport]
    sandbox: dict[str, str] = field(default_factory=dict)  # which executor and image ran the code
    notes: list[str] = field(default_factory=list)  # about the whole submission (another edition's API)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
