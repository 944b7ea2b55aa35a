"""The ticket outbox's Prometheus metrics (labelled by ticket system)."""

from prometheus_client import Counter, Gauge

DELIVERED = Counter("otwatch_tickets_delivered_total",
                    "Ticket requests a remote tool accepted (opened, state).",
                    ["system", "op"])
RETRIES = Counter("otwatch_tickets_retries_total",
                  "Tries that failed and will be retried (outage, 429, 5xx, 401/403).",
                  ["system"])
REJECTED = Counter("otwatch_tickets_rejected_total",
                   "Ticket requests a remote tool refused for good (4xx); shown on the record.",
                   ["system"])
FAILING = Gauge("otwatch_tickets_failing",
                "1 while a ticket system cannot be reached (the outbox is retrying).",
                ["system"])
