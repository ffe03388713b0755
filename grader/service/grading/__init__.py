"""Grading: the queue of jobs in the database, and every run of a job."""
