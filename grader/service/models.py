"""Every domain's models, imported once so that the metadata (and Alembic) sees every table."""

from grader.service.accounts.models import ApiToken, User
from grader.service.assignments.models import Assignment, Extension
from grader.service.courses.models import Course, FormerMembership, Membership
from grader.service.db import Base
from grader.service.grading.models import GradingJob, GradingRun, Regrade
from grader.service.submissions.models import Submission, SubmissionFile
from grader.service.webhooks.models import AnnouncedGrade, Webhook, WebhookAttempt, WebhookDelivery

__all__ = [
    "AnnouncedGrade",
    "ApiToken",
    "Assignment",
    "Base",
    "Course",
    "Extension",
    "FormerMembership",
    "GradingJob",
    "GradingRun",
    "Membership",
    "Regrade",
    "Submission",
    "SubmissionFile",
    "User",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
]
