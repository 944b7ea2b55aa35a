"""CPU per event of the classifier's records transaction alone (not a test).

Run: ``.venv/bin/python -m tests.bench.measure_records_txn [--events N] [--batch B] [--pg]
[--profile OUT]``.
The events of the classifier benchmark (`tests.bench.classifier.event_values`) are parsed,
judged, put through the burst correlator and classified as the group consumer does it, all
before any clock starts; then each batch goes to `RecordStore.record_events` with its message
values, and only that call is timed (this thread's CPU time: the transaction's worker thread
in the classifier). SQLite by default; ``--pg`` records into PostgreSQL (``OTWATCH_TEST_PG``,
default ``postgresql://postgres@127.0.0.1:5432/test``) in a schema of its own, dropped
afterwards. Prints CPU microseconds per event (all batches; and the median batch, leaving out
the first, which opens the records).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from aiokafka import TopicPartition

from agent.runtime.gc_tuning import CLASSIFIER_THRESHOLDS, tune_for_throughput
from detectors.correlate import BurstCorrelator
from detectors.criteria import classify_all, load_criteria
from detectors.recorder import Item, Placed
from detectors.records import RecordStore, open_store
from detectors.signatures import TrustedAgents, judge_event
from tests.bench._common import ROOT
from tests.bench.classifier import event_values

PG_DSN = os.environ.get("OTWATCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def batches(events: int, size: int) -> list[tuple[list[Item], list[bytes]]]:
    """The benchmark's events as the records store gets them, batch by batch."""
    criteria = load_criteria(ROOT / "config" / "criteria.yaml")
    trusted = TrustedAgents({}, require_signed=False)
    tp = TopicPartition("otwatch.changes.suspect", 0)
    values = [value for _, value in event_values(events)]
    bursts: BurstCorrelator[Any] = BurstCorrelator(criteria.burst)
    out = []
    now = datetime.now(UTC)
    for start in range(0, events, size):
        placed: list[Placed] = []
        for offset, value in enumerate(values[start:start + size], start):
            verdict = judge_event(value, max_bytes=1 << 20, trusted=trusted, now=now)
            placed += bursts.offer(verdict, (tp, offset, value), now=now)  # type: ignore[arg-type]
        placed += bursts.due(now=now)
        decided = classify_all([(ev, ctx) for ev, ctx, _ in placed], criteria)
        items = [(ev, cls) for (ev, _, _), cls in zip(placed, decided, strict=True)]
        raws = [token[2] for _, _, token in placed if token is not None]
        out.append((items, raws))
    return out


def record(store: RecordStore, work: list[tuple[list[Item], list[bytes]]]) -> list[float]:
    """Thread CPU seconds per event of each batch's transaction."""
    now = datetime.now(UTC)
    per_event = []
    for items, raws in work:
        t = time.thread_time()
        store.record_events(items, now=now, raw=raws)
        per_event.append((time.thread_time() - t) / max(1, len(items)))
    return per_event


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--pg", action="store_true", help="record into PostgreSQL")
    parser.add_argument("--profile", help="write a cProfile dump of the transactions here")
    args = parser.parse_args()
    work = batches(args.events, args.batch)
    events = sum(len(items) for items, _ in work)
    profiler = cProfile.Profile() if args.profile else None
    with tempfile.TemporaryDirectory() as tmp:
        schema = f"records_txn_{uuid.uuid4().hex[:12]}" if args.pg else None
        target = PG_DSN if args.pg else str(Path(tmp) / "records.db")
        try:
            with open_store(target, schema=schema) as store:
                store.migrate()
                tune_for_throughput(CLASSIFIER_THRESHOLDS)  # as `Classifier.run` does
                if profiler is not None:
                    profiler.enable()
                laps = record(store, work)
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(args.profile)
                ok = store.verify_trail().ok
        finally:
            if schema is not None:
                with psycopg.connect(PG_DSN, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    total = sum(lap * len(items) for lap, (items, _) in zip(laps, work, strict=True))
    rest = laps[1:] or laps
    print(f"{'pg' if args.pg else 'sqlite'} {events} events: "
          f"{total / events * 1e6:.2f} us/event CPU "
          f"(median batch after the first {statistics.median(rest) * 1e6:.2f}); "
          f"trail verified: {ok}")


if __name__ == "__main__":
    main()
