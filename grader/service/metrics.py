"""The service's Prometheus metrics (GET /metrics). Counters and histograms count in this process;
the queue's gauge is read from the database when scraped, so every process reports the same queue."""

from __future__ import annotations

import hmac

from fastapi import Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from grader.service.errors import Unauthorized
from grader.service.grading.models import GradingJob, JobStatus

# A `_created` series beside every counter is noise on a course's dashboard.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=True)

GRADING_SECONDS = Histogram(
    "grader_grading_seconds",
    "Time a worker spent grading one submission, from its claim to its stored grade",
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
    registry=REGISTRY,
)
GRADINGS = Counter(
    "grader_gradings_total",
    "Gradings ended, by outcome: graded, failed (the infrastructure's fault), lost (the lease)",
    ["outcome"],
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "grader_http_requests_total",
    "HTTP requests answered, by route template and status",
    ["route", "status"],
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "grader_webhook_deliveries_total",
    "Webhook delivery attempts, by outcome: delivered, retried, failed (given up), refused (the address)",
    ["outcome"],
    registry=REGISTRY,
)
QUEUE_JOBS = Gauge(
    "grader_queue_jobs",
    "Grading jobs in the queue's database, by state (read when scraped)",
    ["state"],
    registry=REGISTRY,
)


class CountRequests:
    """Counts every HTTP answer by its route's template (`/api/v1/submissions/{submission_id}`, never
    the raw path: ids would make a series each) and status; paths no route matched are `unmatched`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # the app raised before it answered: the server answers 500

        async def noting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            HTTP_REQUESTS.labels(route=template, status=str(status)).inc()


def scrape(session: Session) -> bytes:
    """The metrics in Prometheus's text format, the queue's gauge read now."""
    by_status = select(GradingJob.status, func.count()).group_by(GradingJob.status)
    counts = {status: count for status, count in session.execute(by_status)}
    for state in JobStatus:
        QUEUE_JOBS.labels(state=state.value).set(counts.get(state, 0))
    return generate_latest(REGISTRY)


def metrics(request: Request) -> Response:
    """Prometheus's text format; wants `Authorization: Bearer <GRADER_METRICS_TOKEN>` when that is set."""
    expected = request.app.state.settings.metrics_token
    if expected is not None:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {expected.get_secret_value()}".encode()):
            raise Unauthorized("the metrics want the bearer token GRADER_METRICS_TOKEN")
    with request.app.state.sessions() as session:
        body = scrape(session)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
