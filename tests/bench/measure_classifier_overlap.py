"""CPU per event of the classifier's main-thread work, stage by stage (not a test).

Run: ``.venv/bin/python -m tests.bench.measure_classifier_overlap [--events N] [--rounds R]``.

While a batch's records transaction runs in a worker thread, the main thread parses the next
batch and classifies and encodes the messages of the one before (`detectors.suspects`): on a
two-core machine that work overlaps the transaction, and only its CPU per event decides how
much of the GIL is left for the transaction. This measures those stages alone, with no store,
no broker and no threads: parse and judge (`judge_event`), the burst correlator
(`BurstCorrelator.offer` and ``due``), `classify_all`, and the two encoders of each recorded
event (the alert, `alert_json`, and its record event, `record_event_json`).

Each round takes fresh events of the classifier benchmark (`tests.bench.classifier.event_values`:
a new detection instant every 10 events) in batches as the group consumer reads them: each
event on the partition its key goes to (6, as there), a batch holding each partition's events in
turn, so the events of one instant are spread as there and the per-instant caches hit as they
do there, not more. Prints, per stage, the median over rounds of
CPU microseconds per event. For a paired A/B, run it alternately in two worktrees
(``PYTHONPATH=<worktree> python <this file>`` from inside each).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from agent.runtime.gc_tuning import CLASSIFIER_THRESHOLDS, tune_for_throughput
from detectors.alerts import alert_json, record_event_json
from detectors.correlate import BurstCorrelator
from detectors.criteria import classify_all, load_criteria
from detectors.records import RecordOutcome
from detectors.signatures import TrustedAgents, judge_event
from tests.bench._common import ROOT
from tests.bench.classifier import event_values

#: The suspect topic's partitions in the classifier benchmark.
PARTITIONS = 6
STAGES = ("parse", "bursts", "classify", "alert_json", "record_event_json")


def _round(events: int, batch: int, criteria: Any, laps: dict[str, float]) -> None:
    """One pass over fresh events; adds each stage's CPU seconds to ``laps``."""
    values = _as_read(event_values(events), batch)
    trusted = TrustedAgents({}, require_signed=False)
    tp = TopicPartition("otwatch.changes.suspect", 0)
    bursts: BurstCorrelator[Any] = BurstCorrelator(criteria.burst)
    records: dict[str, str] = {}
    clock = time.process_time
    for start in range(0, events, batch):
        now = datetime.now(UTC)
        at = now.isoformat()
        t0 = clock()
        judged = [
            (judge_event(value, max_bytes=1 << 20, trusted=trusted, now=now), (tp, offset))
            for offset, value in enumerate(values[start:start + batch], start)
        ]
        t1 = clock()
        placed: list[Any] = []
        for event, token in judged:
            placed += bursts.offer(event, token, now=now)  # type: ignore[arg-type]
        placed += bursts.due(now=now)
        t2 = clock()
        decided = classify_all([(ev, ctx) for ev, ctx, _ in placed], criteria)
        t3 = clock()
        items = [(ev, cls, _outcome(ev.event_id, cls.correlation_key, records))
                 for (ev, _, _), cls in zip(placed, decided, strict=True)]
        t4 = clock()
        for event, cls, outcome in items:
            alert_json(event, cls, outcome)
        t5 = clock()
        for event, cls, outcome in items:
            record_event_json(event, cls, outcome, at, opened=outcome.created)
        t6 = clock()
        for stage, lap in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t5 - t4, t6 - t5), strict=True):
            laps[stage] += lap


def _as_read(messages: list[tuple[bytes, bytes]], batch: int) -> list[bytes]:
    """The values in the order a consumer reads them: per batch, partition by partition."""
    partitioner, partitions = DefaultPartitioner(), list(range(PARTITIONS))
    keyed = [(partitioner(key, partitions, partitions), value) for key, value in messages]
    read: list[bytes] = []
    for start in range(0, len(keyed), batch):
        read += [value for _, value in sorted(keyed[start:start + batch], key=lambda m: m[0])]
    return read


def _outcome(event_id: str, key: str, records: dict[str, str]) -> RecordOutcome:
    """What the store would say: the first event of a key opens a record, the others attach."""
    created = key not in records
    if created:
        records[key] = f"NC-2026-{len(records) + 1:06d}"
    record_id = records[key]
    return RecordOutcome(event_id, record_id, record_id.replace("NC", "SEC"), created, False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    criteria = load_criteria(ROOT / "config" / "criteria.yaml")
    tune_for_throughput(CLASSIFIER_THRESHOLDS)  # as `Classifier.run` does
    per_round: dict[str, list[float]] = defaultdict(list)
    for _ in range(args.rounds):
        laps: dict[str, float] = defaultdict(float)
        _round(args.events, args.batch, criteria, laps)
        for stage in STAGES:
            per_round[stage].append(laps[stage] / args.events * 1e6)
    totals = [sum(per_round[s][i] for s in STAGES) for i in range(args.rounds)]
    for stage in STAGES:
        print(f"{stage:>18}: {statistics.median(per_round[stage]):6.2f} us/event "
              f"(min {min(per_round[stage]):6.2f})")
    print(f"{'total':>18}: {statistics.median(totals):6.2f} us/event (min {min(totals):6.2f})")


if __name__ == "__main__":
    main()
