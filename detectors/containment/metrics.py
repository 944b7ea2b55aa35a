"""The containment relay's Prometheus metrics (``otwatch-containment --metrics-port``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

MESSAGES = Counter(
    "otwatch_containment_messages_total",
    "Lot holds and releases the broker acknowledged, by action", ["action"],
)
CURSOR = Gauge(
    "otwatch_containment_trail_cursor",
    "Audit-trail sequence number up to which the relay has published",
)
FAILING = Gauge(
    "otwatch_containment_failing", "1 while the relay cannot publish (broker or database away)"
)
