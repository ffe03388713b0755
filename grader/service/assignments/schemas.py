from __future__ import annotations

from datetime import datetime

from pydantic import Field

from grader.service.assignments.models import HiddenResults
from grader.service.schemas import Answer, Request, UTCMoment


class AssignmentCreate(Request):
    slug: str = Field(max_length=100, examples=["a2"])
    title: str = Field(max_length=300, examples=["Assignment 2: fully-connected nets"])
    catalog: str = Field(max_length=100, examples=["cs231n-a2-fc"])
    due_at: UTCMoment = Field(description="with its timezone, e.g. 2026-05-01T23:59:00-07:00")
    max_submissions: int | None = Field(None, ge=1, le=100_000, description="none: no limit")
    min_interval_seconds: int | None = Field(None, ge=0, le=7 * 86400)
    hidden_results: HiddenResults = HiddenResults.after_due


class AssignmentPatch(Request):
    """Only the fields given change; null clears max_submissions or min_interval_seconds."""

    slug: str | None = Field(None, max_length=100)
    title: str | None = Field(None, max_length=300)
    catalog: str | None = Field(None, max_length=100)
    due_at: UTCMoment | None = None
    max_submissions: int | None = Field(None, ge=1, le=100_000)
    min_interval_seconds: int | None = Field(None, ge=0, le=7 * 86400)
    hidden_results: HiddenResults | None = None


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
    created_at: datetime


class ExtensionPut(Request):
    email: str = Field(max_length=320)
    due_at: UTCMoment


class ExtensionOut(Answer):
    assignment_id: str
    email: str
    name: str
    due_at: datetime
