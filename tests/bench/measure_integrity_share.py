"""The integrity reader's share of the classifier's CPU, on the classifier benchmark's events.

Not a test.

Run: ``.venv/bin/python -m tests.bench.measure_integrity_share [--events N] [--seconds S]
[--start-from earliest|latest] [--runs R] [--live RATE]``.

The real `detectors.service.Classifier` runs against an embedded broker holding the benchmark's
events (`tests.bench.classifier.event_values`), as ``classifier_events_per_s`` runs it, on
SQLite. The benchmark's integrity reader starts at ``latest`` (the events were written before
the classifier started, so it reads none of them); ``--start-from earliest`` makes it read
every one, as a classifier reads live traffic; ``--live RATE`` writes the events at RATE per
second from another process while the classifier runs (no prefill): both readers then read
them as they arrive, as on a plant. Prints, per run: events processed, process CPU
microseconds per event, how many suspect messages the integrity reader took in and its own CPU
microseconds per event (`IntegrityReader._saw`, timed around each call), and the shared memo's
hits and misses when the tree has one (`detectors.parsed_events`).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from agent.kafka.settings import KafkaSettings
from agent.kafka.topics import ensure_topics
from detectors import integrity_reader
from detectors.config import ClassifierConfig, ClassifierSection, IntegritySection
from detectors.criteria import load_criteria
from detectors.records import open_store
from detectors.service import Classifier
from detectors.store_retry import RetryingStore
from simulators.broker import EmbeddedBroker
from tests.bench._common import ROOT, quiet_logs, run_loop
from tests.bench.classifier import TOPIC, _sample, event_values, prefill


class _SawTimer:
    """Wraps `IntegrityReader._saw`: messages taken in and CPU seconds spent there."""

    def __init__(self) -> None:
        self.messages = 0
        self.cpu = 0.0
        self.real = integrity_reader.IntegrityReader._saw

    def install(self) -> None:
        timer = self

        def _saw(reader: Any, topic: Any, messages: list[Any], now: Any) -> None:
            t = time.process_time()
            timer.real(reader, topic, messages, now)  # (topic: a bool before the memo)
            timer.cpu += time.process_time() - t
            timer.messages += len(messages)

        integrity_reader.IntegrityReader._saw = _saw  # type: ignore[method-assign]


async def _one(
    settings: KafkaSettings, n: int, seconds: float, start_from: str, run: int, warmup: float,
    memo_size: int,
) -> str:
    timer = _SawTimer()
    timer.install()
    with tempfile.TemporaryDirectory() as tmp:
        target = str(Path(tmp) / "records.db")
        config = ClassifierConfig(
            classifier=ClassifierSection(
                group_id=f"share-{run}", records_db=target,
                criteria=ROOT / "config" / "criteria.yaml", require_signed_events=False,
            ),
            integrity=IntegritySection(start_from=start_from),  # type: ignore[arg-type]
            kafka=settings,
        )
        with open_store(target) as store:
            store.migrate()
            classifier = Classifier(config, load_criteria(config.classifier.criteria),
                                    RetryingStore(target, store=store))
            if memo_size:  # (not in a tree without the memo)
                from detectors.parsed_events import ParsedEvents

                classifier.trusted.parsed_events = ParsedEvents(memo_size)
            task = asyncio.create_task(classifier.run())
            try:
                if warmup:  # until the group consumer has caught up with the live traffic
                    await _sample(lambda: classifier.processed, n, warmup, 60)
                memo = getattr(classifier.trusted, "parsed_events", None)
                hits0, misses0 = (memo.hits, memo.misses) if memo is not None else (0, 0)
                saw0, cpu_saw0 = timer.messages, timer.cpu
                elapsed, done, cpu = await _sample(lambda: classifier.processed, n, seconds, 60)
                saw, cpu_saw = timer.messages - saw0, timer.cpu - cpu_saw0
            finally:
                classifier.stop()
                await asyncio.wait({task}, timeout=15)
    memo_text = "" if memo is None else (
        f"; memo hits {memo.hits - hits0:,} misses {memo.misses - misses0:,}"
    )
    return (
        f"{done:,} events in {elapsed:.1f} s: {cpu / done * 1e6:.1f} CPU us/event; integrity "
        f"reader took {saw:,} messages, {cpu_saw / max(done, 1) * 1e6:.1f} CPU us per event"
        f" processed{memo_text}"
    )


def _settings(bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=bootstrap, client_id="share", enable_idempotence=False)


async def _produce(bootstrap: str, rate: int) -> None:
    """The benchmark's events at ``rate`` per second, stamped as they are sent, until killed."""
    settings = _settings(bootstrap)
    await ensure_topics(settings, [TOPIC])
    producer = AIOKafkaProducer(**settings.producer_kwargs())
    await producer.start()
    tick = 0.05
    next_at = time.perf_counter()
    while True:
        sent = [await producer.send(TOPIC, value, key=key)
                for key, value in event_values(int(rate * tick))]
        await asyncio.gather(*sent)
        next_at += tick
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))


async def _main(args: argparse.Namespace) -> None:
    with EmbeddedBroker() as broker:
        settings = _settings(broker.bootstrap)
        if not args.live:
            await prefill(settings, args.events)
        for run in range(args.runs):
            producer = None
            if args.live:  # another process: its CPU is not the classifier's
                producer = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "tests.bench.measure_integrity_share",
                    "--produce", broker.bootstrap, "--live", str(args.live),
                )
            try:
                print(await _one(settings, args.events, args.seconds, args.start_from, run,
                                 args.warmup if args.live else 0.0, args.memo_size),
                      flush=True)
            finally:
                if producer is not None:
                    producer.terminate()
                    await asyncio.wait_for(producer.wait(), 10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--start-from", choices=["earliest", "latest"], default="latest")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--live", type=int, default=0,
                        help="events/s written while the classifier runs (no prefill)")
    parser.add_argument("--warmup", type=float, default=15.0,
                        help="with --live: seconds before the measured window")
    parser.add_argument("--memo-size", type=int, default=0, help="(0: the tree's own)")
    parser.add_argument("--produce", metavar="BOOTSTRAP", help=argparse.SUPPRESS)
    args = parser.parse_args()
    quiet_logs()
    if args.produce:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        run_loop(_produce(args.produce, args.live))
        return
    run_loop(_main(args))


if __name__ == "__main__":
    main()
