"""Prometheus metrics.

With several workers, ``opspoor serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory
before the workers start, so every worker writes its samples there and ``/metrics`` (answered by
whichever worker the scrape reaches) adds them up. Without it (tests, one process) the default
registry is used. Labels never carry tenants, tokens or hash values.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("opspoor_http_requests", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram(
    "opspoor_http_request_seconds",
    "Time to answer a request",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
AUTH_FAILURES = Counter("opspoor_auth_failures", "Requests refused for a missing or bad token", ["reason"])
MATCH_INPUTS = Counter("opspoor_match_inputs", "Inputs matched (files or hash values)", ["source"])
MATCH_HITS = Counter("opspoor_match_hits", "Matches found", ["signal"])
INDEX_ENTRIES = Gauge(
    "opspoor_index_entries", "Entries in the match index, per signal", ["signal"], multiprocess_mode="max"
)
CHANGE_LOG_POSITION = Gauge(
    "opspoor_change_log_position", "Newest change applied to the index", multiprocess_mode="min"
)
AUDIT_PENDING = Gauge(
    "opspoor_audit_pending", "Audit rows waiting to be written", multiprocess_mode="livesum"
)
AUDIT_FAILURES = Counter("opspoor_audit_write_failures", "Failed attempts to write audit rows")


def render() -> tuple[bytes, str]:
    """The metrics of every worker (multiprocess mode) or of this process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


_answered: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answer of ``route`` (a template) and time it. The labelled samples are kept, as
    looking them up again costs more than the update on the fast path."""
    key = (route, method, status)
    samples = _answered.get(key)
    if samples is None:
        samples = _answered[key] = (REQUESTS.labels(route, method, str(status)), LATENCY.labels(route))
    samples[0].inc()
    samples[1].observe(seconds)


class RequestMetrics:
    """ASGI middleware counting answers by route template (never the raw path) and timing them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            observe(template, scope["method"], status, time.perf_counter() - start)
