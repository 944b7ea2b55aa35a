"""The agent's Prometheus metrics (source and detection side; the spool and publisher have theirs).

Served on a loopback port by `agent.runner` (`metrics.port`; 0 turns it off).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONTROLLER_UP = Gauge(
    "otwatch_agent_controller_up", "1 while the controller answers reads", ["controller"]
)
READS = Counter(
    "otwatch_agent_reads_total", "Read requests sent, by result", ["controller", "result"]
)
READ_SECONDS = Histogram(
    "otwatch_agent_read_seconds",
    "Time for one full scan of a controller",
    ["controller"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
TAGS_MONITORED = Gauge("otwatch_agent_tags_monitored", "Watched tags", ["controller"])
TAGS_UNREADABLE = Gauge(
    "otwatch_agent_tags_unreadable",
    "Tags the controller answers no value for (a Modbus exception per request), last scan",
    ["controller"],
)
CHANGES = Counter(
    "otwatch_agent_changes_total", "Detected changes, by verdict and kind", ["verdict", "kind"]
)
RECONNECTS = Counter(
    "otwatch_agent_reconnects_total", "Connections (re)established", ["controller"]
)
LAST_GOOD_READ = Gauge(
    "otwatch_agent_last_good_read_timestamp_seconds",
    "Unix time of the last complete scan (age = time() - this)",
    ["controller"],
)
ASYNCIO_TASKS = Gauge(
    "otwatch_agent_asyncio_tasks", "Unfinished asyncio tasks in the agent's event loop"
)
