"""Accounts: users and their passwords, and the API tokens a course gives its integrations."""
