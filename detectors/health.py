"""The classifier's metrics (served on ``metrics.host:metrics.port``) and its status file.

Metrics: events by classification, rules fired, dead letters by reason, records opened,
integrity findings by kind, consumer lag per partition (highwater - position), processing
latency (agent detection to record committed), events held for burst correlation, and the
partitions this process owns. The status file is a small JSON document for operators and
tests: pid, assigned partitions, counters; written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import Counter, Gauge, Histogram

from agent.runtime.files import write_atomically

EVENTS = Counter("otwatch_classifier_events_total", "Events classified", ["classification"])
RULES = Counter("otwatch_classifier_rules_fired_total", "Rules fired", ["rule"])
DEAD = Counter("otwatch_classifier_dead_letters_total", "Messages sent to the DLQ", ["reason"])
DEAD_DROPPED = Counter(
    "otwatch_classifier_dead_letters_dropped_total",
    "Dead letters given up: refused by the broker, or not acknowledged in time",
)
RECORDS = Counter("otwatch_classifier_records_opened_total", "Master records opened")
DUPLICATES = Counter(
    "otwatch_classifier_duplicates_total", "Redelivered events the store recognised"
)
FINDINGS = Counter(
    "otwatch_classifier_integrity_findings_total", "Seq gaps and silent agents found", ["kind"]
)
LAG = Gauge(
    "otwatch_classifier_consumer_lag", "Highwater minus position", ["topic", "partition"]
)
HELD = Gauge("otwatch_classifier_burst_held_events", "Events held while a burst is decided")
ASSIGNED = Gauge("otwatch_classifier_assigned_partitions", "Partitions this process consumes")
ASYNCIO_TASKS = Gauge(
    "otwatch_classifier_asyncio_tasks", "Unfinished asyncio tasks in the classifier's event loop"
)
LATENCY = Histogram(
    "otwatch_classifier_processing_seconds",
    "Detection (agent clock) to record committed",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def dead_letter_reason(reason: str) -> str:
    """A bounded label for the reason: its first clause, e.g. ``not JSON`` or ``unknown schema``."""
    head = reason.split(":")[0]
    return head.split(" '")[0].split(" None")[0][:40]


def set_lag(lags: Iterable[tuple[str, int, int]]) -> None:
    for topic, partition, lag in lags:
        LAG.labels(topic, str(partition)).set(lag)


@dataclass
class Status:
    """What this process is doing; `write` puts it in the status file (if configured)."""

    path: Path | None
    assigned: list[str] = field(default_factory=list)
    processed: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    dead_letters_dropped: int = 0
    findings: int = 0
    watching: bool = False

    def set_assigned(self, partitions: Iterable[tuple[str, int]]) -> None:
        self.assigned = sorted(f"{t}/{p}" for t, p in partitions)
        ASSIGNED.set(len(self.assigned))
        self.write()

    def as_dict(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "assigned": self.assigned,
            "processed": self.processed,
            "duplicates": self.duplicates,
            "dead_letters": self.dead_letters,
            "dead_letters_dropped": self.dead_letters_dropped,
            "integrity_findings": self.findings,
            "watching": self.watching,
        }

    def write(self) -> None:
        if self.path is None:
            return
        # A status file for operators and tests, rewritten often: atomic, not fsynced.
        write_atomically(self.path, orjson.dumps(self.as_dict()), durable=False)
