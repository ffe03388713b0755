"""The service's Prometheus metrics (GET /metrics). Counters and histograms count in this process;
the queue's gauge is read from the database when scraped, so every process reports the same queue."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

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
