"""Prometheus counters of OneRoster traffic, moved by the transport on every attempt."""

from __future__ import annotations

from prometheus_client import Counter

ONEROSTER_REQUESTS = Counter(
    "ew_oneroster_requests_total",
    "OneRoster HTTP requests, by response status (or timeout / unreachable).",
    ("status",),
)
ONEROSTER_RETRIES = Counter(
    "ew_oneroster_retries_total", "OneRoster requests retried, by the failure retried.", ("reason",)
)
ONEROSTER_ERRORS = Counter(
    "ew_oneroster_errors_total", "OneRoster requests that failed for good, by error.", ("error",)
)
