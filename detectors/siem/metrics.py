"""The SIEM relay's metrics (served on ``siem.metrics_host:siem.metrics_port``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

FORWARDED = Counter("otwatch_siem_alerts_forwarded_total",
                    "Alerts the syslog collector took (at least once)")
UNREADABLE = Counter("otwatch_siem_alerts_unreadable_total",
                     "Messages on the alerts topic that are no alert (sent to the DLQ)")
COLLECTOR_UP = Gauge("otwatch_siem_collector_up",
                     "1 while the syslog collector takes alerts, 0 while it does not")
SEND_FAILURES = Counter("otwatch_siem_send_failures_total",
                        "Failed attempts to connect to the collector or deliver a batch")
