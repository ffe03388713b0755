"""Every domain's models, imported once so that the metadata (and Alembic) sees every table."""

from grader.service.accounts.models import ApiToken, User
from grader.service.assignments.models import Assignment, Extension
from grader.service.courses.models import Course, Membership
from grader.service.db import Base
from grader.service.grading.models import GradingJob, GradingRun
from grader.service.submissions.models import Submission, SubmissionFile

__all__ = [
    "ApiToken",
    "Assignment",
    "Base",
    "Course",
    "Extension",
    "GradingJob",
    "GradingRun",
    "Membership",
    "Submission",
    "SubmissionFile",
    "User",
]
