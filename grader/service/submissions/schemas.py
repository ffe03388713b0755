from __future__ import annotations

from datetime import datetime
from typing import Literal

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
