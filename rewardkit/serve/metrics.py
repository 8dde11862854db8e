"""Prometheus metrics of one server process (`GET /metrics`). Each process has its own registry,
so with `--workers N` a scrape sees one worker; scrape each or run one worker per container."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from rewardkit.scoring import ScoreTable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("rewardkit_requests", "Requests answered, by endpoint and status",
                                ["endpoint", "status"], registry=self.registry)
        self.samples = Counter("rewardkit_samples", "Samples scored, by endpoint", ["endpoint"],
                               registry=self.registry)
        self.reward_errors = Counter("rewardkit_reward_errors", "Cells a verifier could not judge, by reward",
                                     ["reward"], registry=self.registry)
        self.latency = Histogram("rewardkit_request_seconds", "Request latency, by endpoint", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batches = Counter("rewardkit_scoring_batches", "spec.score calls (concurrent requests coalesce "
                               "into one)", registry=self.registry)
        self.in_flight = Gauge("rewardkit_samples_in_flight", "Samples admitted and not yet scored",
                               registry=self.registry)

    def count_table(self, endpoint: str, table: ScoreTable) -> None:
        self.samples.labels(endpoint).inc(len(table))
        for j, name in enumerate(table.reward_names):
            errors = sum(1 for row in table.cells if row[j].error is not None)
            if errors:
                self.reward_errors.labels(name).inc(errors)

    def text(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts every answered request by endpoint and status and times it (pure ASGI, so it does
    not get between a handler and the client's disconnect)."""

    def __init__(self, app: Any, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        endpoint = path.strip("/") if path in _KNOWN else "other"
        started = time.monotonic()
        status = [500]

        async def recording(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            self.metrics.requests.labels(endpoint, str(status[0])).inc()
            self.metrics.latency.labels(endpoint).observe(time.monotonic() - started)


_KNOWN = {"/score", "/get_reward", "/verify", "/seed_session", "/health", "/spec", "/metrics"}
