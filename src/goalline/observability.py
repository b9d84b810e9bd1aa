"""Prometheus metrics (``GET /metrics``) and the structured log line format.

Metrics are per process: with ``--workers N`` each worker answers for itself, so scrape through
a per-process port or sum in Prometheus (documented in docs/operations.md).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The service's metrics, in a registry of their own (one per app, so tests stay apart)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "goalline_api_requests",
            "API calls answered, by method, transport and envelope error code (0 = success).",
            ["method", "transport", "error"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "goalline_api_request_seconds",
            "Time from a decoded request to its encoded reply, by method.",
            ["method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.events = Counter(
            "goalline_goal_events_stored",
            "Goal events committed to storage.",
            registry=self.registry,
        )
        self.duplicates = Counter(
            "goalline_duplicate_requests",
            "Requests answered from the request log (Duplicate-Request: true).",
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "goalline_api_in_flight",
            "API requests being handled by this process.",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
