"""Assignments of a course: catalog, due date, extensions, submission limits, hidden results."""
