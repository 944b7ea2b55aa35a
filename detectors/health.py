"""The classifier's metrics (served on ``metrics.host:metrics.port``) and its status file.

Metrics: events by classification, rules fired, dead letters by reason, records opened,
integrity findings by kind, consumer lag per partition (highwater - position), processing
latency (agent detection to record committed), events held for burst correlation, and the
partitions this process owns. The status file is a small JSON document for operators and
tests: pid, assigned partitions, counters; written atomically.
"""

from __future__ import annotations

import math
import os
import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import HistogramMetricFamily
from prometheus_client.registry import Collector

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


class BatchedHistogram(Collector):
    """A histogram observed a batch at a time: `observe_counts` adds many observations of a
    few distinct values under one lock. ``Histogram.observe`` costs 1.5 us per event (a lock
    per increment, a loop over the bounds); the events of a batch share a few detection
    instants. Served as a ``Histogram`` with the same buckets is served (``le`` bounds,
    ``_count``, ``_sum``; no ``_created`` sample), through the public collector API."""

    def __init__(self, name: str, documentation: str, buckets: Iterable[float],
                 registry: CollectorRegistry | None = REGISTRY) -> None:
        self._name = name
        self._documentation = documentation
        #: Upper bounds, +Inf last (as `Histogram` adds it).
        self._bounds = (*sorted(float(b) for b in buckets), math.inf)
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        self._lock = threading.Lock()  # the metrics server reads from its own thread
        if registry is not None:
            registry.register(self)

    def observe(self, amount: float) -> None:
        self.observe_counts({amount: 1})

    def observe_counts(self, counts: Mapping[float, int]) -> None:
        """Observe each value its count of times: what as many ``observe`` calls would
        count (a value goes in the first bucket whose bound is not below it; the sum may
        differ from repeated additions in its last bits)."""
        bounds, buckets = self._bounds, self._counts
        with self._lock:
            for amount, count in counts.items():
                buckets[bisect_left(bounds, amount)] += count
                self._sum += amount * count

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for bound, count in zip(self._bounds, counts, strict=True):
            running += count
            cumulative.append((_bound_text(bound), running))
        family = HistogramMetricFamily(self._name, self._documentation)
        family.add_metric([], cumulative, total)
        yield family


def _bound_text(bound: float) -> str:
    """A bucket's ``le`` label as `Histogram` writes it (``0.01``, ``1.0``, ``+Inf``)."""
    return "+Inf" if bound == math.inf else repr(bound)


LATENCY = BatchedHistogram(
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
