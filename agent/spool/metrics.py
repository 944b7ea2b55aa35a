"""Prometheus metrics of the spool (module level: one set per process, one spool per agent)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SPOOL_DEPTH = Gauge("otwatch_agent_spool_depth", "Events in the spool, not yet acknowledged")
SPOOL_BYTES = Gauge("otwatch_agent_spool_bytes", "Bytes of event keys and values in the spool")
SPOOL_OLDEST_AGE = Gauge(
    "otwatch_agent_spool_oldest_age_seconds", "Age of the oldest unacknowledged event (0: empty)"
)
SPOOL_APPENDED = Counter("otwatch_agent_spool_appended_total", "Events written to the spool")
SPOOL_REFUSED = Counter(
    "otwatch_agent_spool_refused_total",
    "Events refused because the spool was full (reason: events, bytes, age, disk)",
    ["reason"],
)
SPOOL_QUARANTINED = Gauge(
    "otwatch_agent_spool_quarantine_events",
    "Events in the spool's quarantine now: refused by the broker for good, kept, not sent",
)
SPOOL_QUARANTINED_TOTAL = Counter(
    "otwatch_agent_spool_quarantined_total",
    "Events moved to the spool's quarantine, by the broker's reason (error name)",
    ["reason"],
)
