"""The old name of grader.intake.uploads (see grader/submissions/__init__.py)."""

from grader.intake.uploads import GRADED_FILES, REQUIRED_FILES, load_submission

__all__ = ["GRADED_FILES", "REQUIRED_FILES", "load_submission"]
