"""Prometheus metrics (``GET /metrics``) and the structured log line format.

Metrics are per process: with ``--workers N`` each worker answers for itself, so scrape through
a per-process port or sum in Prometheus (documented in docs/operations.md).

The request path only adds to plain integers and lists here; a custom collector turns them into
Prometheus families when ``/metrics`` is scraped. (prometheus_client's own Counter and Histogram
take a lock and check their state on every update: about 10 µs a request on the hot path, which
the profile of ``goals/register`` showed.) The event loop is the only writer, so no lock is
needed; a scrape reads values that are at most one request old.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class _Latency:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0


class Metrics:
    """The service's metrics, in a registry of their own (one per app, so tests stay apart)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests: dict[tuple[str, str, str], int] = {}
        self._latency: dict[str, _Latency] = {}
        self.events_stored = 0
        self.duplicates = 0
        self.in_flight: Callable[[], float] = lambda: 0
        #: 1 while storage is known unreachable (the store's breaker is open), else 0.
        self.storage_unavailable: Callable[[], float] = lambda: 0
        self.registry.register(self)  # a Collector by its collect()

    def count_request(self, method: str, transport: str, error: int, seconds: float | None) -> None:
        """One answered API call (``seconds`` None: answered without running the method)."""
        key = (method, transport, str(error))
        self._requests[key] = self._requests.get(key, 0) + 1
        if seconds is not None:
            latency = self._latency.get(method)
            if latency is None:
                latency = self._latency[method] = _Latency()
            latency.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
            latency.total += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "goalline_api_requests",
            "API calls answered, by method, transport and envelope error code (0 = success).",
            labels=["method", "transport", "error"],
        )
        for labels, count in sorted(self._requests.items()):
            requests.add_metric(list(labels), count)
        yield requests
        latency = HistogramMetricFamily(
            "goalline_api_request_seconds",
            "Time from a decoded request to its encoded reply, by method.",
            labels=["method"],
        )
        for method, values in sorted(self._latency.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), values.counts, strict=True):
                cumulative += count
                buckets.append((_go_float(bound), cumulative))
            latency.add_metric([method], buckets, values.total)
        yield latency
        yield CounterMetricFamily(
            "goalline_goal_events_stored", "Goal events committed to storage.",
            value=self.events_stored,
        )  # fmt: skip
        yield CounterMetricFamily(
            "goalline_duplicate_requests",
            "Requests answered from the request log (Duplicate-Request: true).",
            value=self.duplicates,
        )
        yield GaugeMetricFamily(
            "goalline_api_in_flight", "API requests being handled by this process.",
            value=self.in_flight(),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "goalline_storage_unavailable",
            "1 while storage is known unreachable: requests get 503 at once until a probe "
            'reaches it again (docs/operations.md, "When storage is down"); else 0.',
            value=self.storage_unavailable(),
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _go_float(value: float) -> str:
    """Prometheus' spelling of a bucket bound (``+Inf``, ``0.005``)."""
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text
