"""A deadline rush: many more clients at once than the API has database connections or threads. Every
one is answered (none waits forever for a connection held by a request that waits for a thread)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.grader.service.api.conftest import World, example_files

CLIENTS = 120  # anyio's pool has 40 threads; the API keeps 16 connections (and 16 more for a moment)


@pytest.mark.slow(reason="120 uploads at once")
def test_more_clients_at_once_than_connections_and_threads_are_all_answered(world: World) -> None:
    url = f"/api/v1/assignments/{world.assignment}/submissions"
    staff = world.headers["token:submissions:write"]

    def submit(number: int) -> Any:
        data = {"student": world.emails["student" if number % 2 else "owner"]}
        return world.client.post(url, headers=staff, data=data, files=example_files())

    with ThreadPoolExecutor(max_workers=CLIENTS) as clients:
        answers = list(clients.map(submit, range(CLIENTS)))
    assert [answer.status_code for answer in answers] == [202] * CLIENTS, {a.text for a in answers}
    listed = world.client.get(url, headers=world.headers["instructor"]).json()
    assert len(listed) == CLIENTS + 1  # and the owner's graded one
