from __future__ import annotations

from datetime import datetime

from pydantic import Field

from grader.service.assignments.models import Counting, HiddenResults, LatePolicy
from grader.service.schemas import Answer, Request, UTCMoment


class AssignmentCreate(Request):
    slug: str = Field(max_length=100, examples=["a2"])
    title: str = Field(max_length=300, examples=["Assignment 2: fully-connected nets"])
    catalog: str = Field(max_length=100, examples=["cs231n-a2-fc"])
    due_at: UTCMoment = Field(description="with its timezone, e.g. 2026-05-01T23:59:00-07:00")
    max_submissions: int | None = Field(None, ge=1, le=100_000, description="none: no limit")
    min_interval_seconds: int | None = Field(None, ge=0, le=7 * 86400)
    hidden_results: HiddenResults = HiddenResults.after_due
    late_policy: LatePolicy = Field(
        LatePolicy.none, description="none: refused after the due date; per_day: a penalty per started day"
    )
    penalty_per_day: float = Field(0.0, ge=0, le=1, description="the fraction of the score taken per day")
    max_late_days: int | None = Field(None, ge=0, le=365, description="per_day: refused after; none: no cap")
    counting: Counting = Field(Counting.best, description="which graded submission is the grade")
    canvas_assignment_id: str | None = Field(
        None,
        max_length=30,
        pattern=r"^[0-9]+$",
        description="the Canvas assignment's number: names its column",
    )


class AssignmentPatch(Request):
    """Only the fields given change; null clears max_submissions, min_interval_seconds, max_late_days or
    canvas_assignment_id. A changed policy changes the grades at once (they are computed when read)."""

    slug: str | None = Field(None, max_length=100)
    title: str | None = Field(None, max_length=300)
    catalog: str | None = Field(None, max_length=100)
    due_at: UTCMoment | None = None
    max_submissions: int | None = Field(None, ge=1, le=100_000)
    min_interval_seconds: int | None = Field(None, ge=0, le=7 * 86400)
    hidden_results: HiddenResults | None = None
    late_policy: LatePolicy | None = None
    penalty_per_day: float | None = Field(None, ge=0, le=1)
    max_late_days: int | None = Field(None, ge=0, le=365)
    counting: Counting | None = None
    canvas_assignment_id: str | None = Field(None, max_length=30, pattern=r"^[0-9]+$")


class AssignmentOut(Answer):
    id: str
    course_id: str
    slug: str
    title: str
    catalog: str
    due_at: datetime
    max_submissions: int | None
    min_interval_seconds: int | None
    hidden_results: HiddenResults
    late_policy: LatePolicy
    penalty_per_day: float
    max_late_days: int | None
    counting: Counting
    canvas_assignment_id: str | None
    created_at: datetime


class ExtensionPut(Request):
    email: str = Field(max_length=320)
    due_at: UTCMoment


class ExtensionOut(Answer):
    assignment_id: str
    email: str
    name: str
    due_at: datetime
