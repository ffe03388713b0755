"""Signing a TestClient in through the login page, as a browser does (its CSRF token from the form)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.service.accounts.models import User
from grader.service.accounts.passwords import hash_password

PASSWORD = "a page password"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found[1]


def give_password(session: Session, email: str, password: str = PASSWORD) -> None:
    user = session.scalar(select(User).where(User.email == email))
    assert user is not None
    user.password_hash = hash_password(password)


def log_in(client: TestClient, email: str, password: str = PASSWORD) -> None:
    client.cookies.clear()
    form = client.get("/login")
    answer = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(form.text), "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
