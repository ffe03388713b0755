"""The trusted grading service for CS231n assignment 2."""

from pathlib import Path

# A correct submission as the course's starter folder holds it, shipped as package data: `make run` and
# the benchmark grade it, and the test fixtures are written as edits of it.
EXAMPLE_SUBMISSION = Path(__file__).resolve().parent / "examples" / "correct_course"
