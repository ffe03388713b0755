from __future__ import annotations

from datetime import datetime

from grader.service.schemas import Answer


class GradeOut(Answer):
    """A student's grade: the counting submission's score, and its final score after the late policy."""

    email: str
    name: str
    student_number: str | None
    lms_id: str | None
    submissions: int
    counting_submission_id: str | None
    score: float | None
    max_score: float | None
    late_days: int
    penalty: float
    final_score: float | None
    graded_at: datetime | None
