"""The service: the API, its database and queue, organized by domain (accounts, courses, assignments,
submissions, grading); it grades only through grader.core.Grader."""
