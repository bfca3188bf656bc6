"""Prometheus metrics: what Airlock counts, served at GET `/metrics` in the text format.

Each `Metrics` has its own `CollectorRegistry` (never prometheus_client's global one), so several
apps in one process (tests) count separately. Label values come from small fixed sets: a request
method Airlock does not know is counted as "OTHER", so clients cannot grow the series count.

Cache hit ratio: `airlock_cache_hits_total` and `airlock_cache_misses_total` are plain counters,
and the ratio is left to PromQL, over the window one cares about:

    sum(rate(airlock_cache_hits_total[5m]))
      / (sum(rate(airlock_cache_hits_total[5m])) + sum(rate(airlock_cache_misses_total[5m])))

A gauge kept here could only hold the ratio since start-up, which hides recent changes, is reset by
every restart and cannot be summed over several replicas; counters allow all of that.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

# The methods counted by name; anything else is "OTHER".
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Requests range from a cached config.json (milliseconds) to a multi-gigabyte download (minutes).
REQUEST_BUCKETS_S = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
)
# Scans are bounded by AIRLOCK_SCAN_TIME_LIMIT_S (default 300 s).
SCAN_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
# The classic text format (0.0.4) is what every Prometheus version scrapes.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def status_class(status: int) -> str:
    """200 -> "2xx"; anything outside 100-599 -> "other"."""
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "airlock_http_requests",
            "HTTP requests Airlock answered, by method and status class.",
            ["method", "status_class"],
            registry=self.registry,
        )
        self.bytes_sent = Counter(
            "airlock_http_response_bytes",
            "Response body bytes Airlock sent to clients.",
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "airlock_http_request_duration_seconds",
            "Time from receiving a request to its last byte sent.",
            buckets=REQUEST_BUCKETS_S,
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "airlock_cache_hits",
            "File requests (HEAD or GET) answered from Airlock's cache of cleared blobs.",
            registry=self.registry,
        )
        self.cache_misses = Counter(
            "airlock_cache_misses",
            "File requests (HEAD or GET) that had to wait for an upstream fetch and scan.",
            registry=self.registry,
        )
        self.decisions = Counter(
            "airlock_decisions",
            "Policy decisions on fetched blobs, by verdict and sniffed format.",
            ["verdict", "format"],
            registry=self.registry,
        )
        self.scan_duration = Histogram(
            "airlock_scan_duration_seconds",
            "Time to scan one blob, by sniffed format.",
            ["format"],
            buckets=SCAN_BUCKETS_S,
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "airlock_upstream_errors",
            'Failed upstream requests, by kind: "5xx", "429", "timeout" or "connection".',
            ["kind"],
            registry=self.registry,
        )
        self.webhook_events = Counter(
            "airlock_webhook_events",
            'Webhook events by outcome: "delivered", "failed" (given up) or "dropped" (queue '
            "full or webhook closed).",
            ["outcome"],
            registry=self.registry,
        )

    def request_finished(
        self, method: str, status: int, bytes_sent: int, duration_s: float
    ) -> None:
        method = method.upper()
        label = method if method in KNOWN_METHODS else "OTHER"
        self.requests.labels(method=label, status_class=status_class(status)).inc()
        if bytes_sent > 0:
            self.bytes_sent.inc(bytes_sent)
        self.request_duration.observe(max(duration_s, 0.0))

    def cache_lookup(self, hit: bool) -> None:
        (self.cache_hits if hit else self.cache_misses).inc()

    def decision(self, verdict: str, format: str) -> None:
        self.decisions.labels(verdict=verdict, format=format).inc()

    def scan_finished(self, duration_s: float, format: str) -> None:
        self.scan_duration.labels(format=format).observe(max(duration_s, 0.0))

    def upstream_error(self, kind: str) -> None:
        self.upstream_errors.labels(kind=kind).inc()

    def webhook_event(self, outcome: str) -> None:
        self.webhook_events.labels(outcome=outcome).inc()

    def render(self) -> tuple[bytes, str]:
        """The current values in the Prometheus text format, and its Content-Type."""
        return generate_latest(self.registry), CONTENT_TYPE
