"""Final grades: for each student of a course, the submission that counts (best or last) and its score
after the assignment's late policy. Computed when read, from the runs: nothing here is stored, so that a
changed policy or extension changes the grades at once and the history explains every number."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class GradeRow:
    """A student's grade for an assignment (score and final_score None: nothing graded yet)."""

    student_id: str
    email: str
    name: str
    student_number: str | None
    lms_id: str | None
    sis_login_id: str | None
    section: str | None
    first_name: str | None
    last_name: str | None
    submissions: int
    counting_submission_id: str | None
    score: float | None
    max_score: float | None
    late_days: int
    penalty: float  # the fraction taken off the score
    final_score: float | None
    graded_at: datetime | None
