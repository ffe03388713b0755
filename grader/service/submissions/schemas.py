from __future__ import annotations

from datetime import datetime
from typing import Literal

from grader.service.grading.models import GradingRun
from grader.service.schemas import Answer

SubmissionStatus = Literal["queued", "running", "graded", "failed"]


class Accepted(Answer):
    id: str
    status: SubmissionStatus
    status_url: str


class Student(Answer):
    email: str
    name: str


class SubmissionOut(Answer):
    id: str
    assignment_id: str
    student: Student
    status: SubmissionStatus
    score: float | None
    max_score: float | None
    late: bool
    created_at: datetime
    graded_at: datetime | None


class RunOut(Answer):
    id: str
    attempt: int
    status: str
    worker: str
    seed: int
    sandbox_image: str | None
    grader_version: str
    started_at: datetime
    finished_at: datetime | None
    seconds: float | None
    score: float | None
    max_score: float | None
    error: str | None

    @classmethod
    def of(cls, run: GradingRun) -> RunOut:
        return cls(
            id=run.id,
            attempt=run.attempt,
            status=run.status,
            worker=run.worker,
            seed=run.seed,
            sandbox_image=run.sandbox_image,
            grader_version=run.grader_version,
            started_at=run.started_at,
            finished_at=run.finished_at,
            seconds=run.seconds,
            score=run.score,
            max_score=run.max_score,
            error=run.error,
        )
