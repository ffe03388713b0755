"""Submissions: immutable uploads, their files stored content-addressed."""
