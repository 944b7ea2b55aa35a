"""CPU per event of the classifier's own work, without a broker (not a test).

Run: ``.venv/bin/python -m tests.bench.measure_classifier_cpu [--events N] [--profile OUT]
[--signed]``.
The events of the classifier benchmark (`tests.bench.classifier.event_values`) go through what
the group consumer does with each batch: parse and judge every message, the burst correlator,
classify and record into SQLite (`Recorder.store`), then encode and batch the record events and
alerts (`Recorder.publish`, into real aiokafka record batches that a stub producer drops).
Prints CPU microseconds per event per stage (the mean, and the median and minimum over
batches): on a shared machine CPU time is the figure to compare (``--profile`` writes a
cProfile dump of the whole run).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from aiokafka.producer.message_accumulator import BatchBuilder

from agent.contract import SCHEMA, EventSigner, SuspectChange
from agent.kafka.settings import TopicNames
from agent.runtime.gc_tuning import CLASSIFIER_THRESHOLDS, tune_for_throughput
from detectors import health, store_retry
from detectors.correlate import BurstCorrelator
from detectors.criteria import load_criteria
from detectors.recorder import Placed, Recorder
from detectors.records import open_store
from detectors.signatures import TrustedAgents, judge_event
from detectors.store_retry import RetryingStore
from tests.bench._common import ROOT
from tests.bench.classifier import event_values


class _DroppingProducer:
    """What `Outbox` asks of a producer: real record batches, sent nowhere."""

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(6))

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(16384, 0)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> Any:
        batch._build()  # (what the sender does before the request)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def _signed_values(events: int) -> tuple[list[bytes], TrustedAgents]:
    """The same events as schema v2, signed as an agent signs them (one Merkle batch per
    spool append of `MAX_TREE_SIZE`), and a classifier that requires signatures."""
    signer = EventSigner.generate()
    changes = [
        SuspectChange.model_validate_json(value).model_copy(update={"schema_": SCHEMA})
        for _, value in event_values(events)
    ]
    trusted = TrustedAgents({signer.key_id: signer.public_key_b64}, require_signed=True)
    return signer.batch_messages(changes), trusted


async def _run(
    events: int, batch_size: int, times: dict[str, list[float]], *, signed: bool = False
) -> None:
    criteria = load_criteria(ROOT / "config" / "criteria.yaml")
    trusted = TrustedAgents({}, require_signed=False)
    tp = TopicPartition("otwatch.changes.suspect", 0)
    values = [value for _, value in event_values(events)]
    if signed:
        values, trusted = _signed_values(events)
    with tempfile.TemporaryDirectory() as tmp:
        target = str(Path(tmp) / "records.db")
        with open_store(target) as store:
            store.migrate()
            retrying = RetryingStore(target, store=store)
            recorder = Recorder(
                _DroppingProducer(), TopicNames(), criteria, retrying,  # type: ignore[arg-type]
                health.Status(None), lambda: datetime.now(UTC),
            )
            bursts: BurstCorrelator[Any] = BurstCorrelator(criteria.burst)
            tune_for_throughput(CLASSIFIER_THRESHOLDS)  # as `Classifier.run` does
            for start in range(0, events, batch_size):
                now = datetime.now(UTC)
                t = time.process_time()
                judged = []
                for offset, value in enumerate(values[start:start + batch_size], start):
                    verdict = judge_event(value, max_bytes=1 << 20, trusted=trusted, now=now)
                    judged.append((verdict, (tp, offset, value)))
                t = _lap(times, "parse+judge", t)
                placed: list[Placed] = []
                for verdict, token in judged:
                    placed += bursts.offer(verdict, token, now=now)  # type: ignore[arg-type]
                placed += bursts.due(now=now)
                t = _lap(times, "bursts", t)
                stored = await recorder.store(placed, now)
                t = _lap(times, "classify+record", t)
                await (await recorder.publish(stored))
                _lap(times, "publish", t)


async def _inline(operation: Any, store: Any) -> Any:
    return operation(store)


def _lap(times: dict[str, list[float]], stage: str, since: float) -> float:
    now = time.process_time()
    times[stage].append(now - since)
    return now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--profile", help="write a cProfile dump here")
    parser.add_argument("--signed", action="store_true",
                        help="v2 events signed in Merkle batches, signatures required (the "
                        "production setting; the benchmark's events are unsigned v1)")
    args = parser.parse_args()
    times: dict[str, list[float]] = defaultdict(list)
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:  # cProfile sees one thread: the transaction runs in this one
        store_retry._in_thread = _inline  # type: ignore[assignment]
        profiler.enable()
    asyncio.run(_run(args.events, args.batch, times, signed=args.signed))
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    total = sum(sum(laps) for laps in times.values())
    per_event = 1e6 / args.batch
    for stage, laps in times.items():
        # (per batch, the first left out: it opens the record; under load the median and the
        # minimum move less than the mean)
        rest = laps[1:] or laps
        print(f"{stage:>16}: {sum(laps) / args.events * 1e6:6.1f} us/event "
              f"(per batch: median {statistics.median(rest) * per_event:6.1f}, "
              f"min {min(rest) * per_event:6.1f})")
    print(f"{'total':>16}: {total / args.events * 1e6:6.1f} us/event "
          f"({args.events / total:,.0f} events per CPU-second)")


if __name__ == "__main__":
    main()
