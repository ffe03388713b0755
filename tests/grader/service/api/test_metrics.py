"""GET /metrics: Prometheus's text format, the queue read from the database, requests counted by their
route's template, and the token when one is set."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from grader.service.app import create_app
from grader.settings import Settings
from tests.grader.service.api.conftest import SECRET, World


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: TestClient, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return samples(answer.text)


def requests_of(seen: dict[tuple[str, tuple[tuple[str, str], ...]], float], route: str, status: str) -> float:
    return seen.get(("grader_http_requests_total", (("route", route), ("status", status))), 0.0)


def test_the_queue_and_the_requests_are_counted(world: World) -> None:
    before = scrape(world.client)
    assert before[("grader_queue_jobs", (("state", "done"),))] == 1.0  # the world's graded submission
    assert before[("grader_queue_jobs", (("state", "queued"),))] == 0.0
    for path in (f"/api/v1/submissions/{world.submission}", "/api/v1/submissions/nope"):
        world.client.get(path, headers=world.headers["instructor"])
    world.client.get("/no/such/page")
    after = scrape(world.client)
    route = "/api/v1/submissions/{submission_id}"
    assert requests_of(after, route, "200") == requests_of(before, route, "200") + 1
    assert requests_of(after, route, "404") == requests_of(before, route, "404") + 1
    assert requests_of(after, "unmatched", "404") == requests_of(before, "unmatched", "404") + 1
    assert not any("nope" in dict(labels).get("route", "") for _, labels in after)
    assert any(name == "grader_grading_seconds_bucket" for name, _ in after)
    text = world.client.get("/metrics").text
    for family in ("grader_gradings_total", "grader_webhook_deliveries_total"):
        assert f"# TYPE {family} counter" in text


def test_a_metrics_token_keeps_others_out(database_url: str, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        secret_key=SECRET,  # type: ignore[arg-type]
        sandbox="process",
        metrics_token="scrape-me",  # type: ignore[arg-type]
    )
    with TestClient(create_app(settings)) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "scrape-me"}):
            refused = client.get("/metrics", headers=headers)
            assert refused.status_code == 401 and "GRADER_METRICS_TOKEN" in refused.json()["detail"]
        assert ("grader_queue_jobs", (("state", "running"),)) in scrape(
            client, Authorization="Bearer scrape-me"
        )
