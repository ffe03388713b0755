"""Intake: turning an upload into the graded files (uploads.py) and reading the name the student's files
give the course's package (packages.py), validating everything and running nothing."""
