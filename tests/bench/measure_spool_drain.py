"""Measure the spool drain rate: events/s from a full spool to the embedded broker (not a test).

Run: ``.venv/bin/python -m tests.bench.measure_spool_drain [--events 20000] [--batch 500 2000]``.
Prints the append rate (fsync'd transactions of 100 events) and, per batch size, the drain rate.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from agent.kafka.settings import KafkaSettings, TopicNames
from agent.publisher import SpoolPublisher
from agent.spool import Spool
from simulators.broker import EmbeddedBroker
from tests.delivery.waiting import eventually
from tests.support.events import numbered_events


def fill(spool: Spool, n: int) -> float:
    """Append ``n`` events in transactions of 100; returns events/s."""
    events = numbered_events(n, controllers=8)
    start = time.perf_counter()
    for i in range(0, n, 100):
        spool.append(events[i : i + 100])
    return n / (time.perf_counter() - start)


async def drain(spool: Spool, bootstrap: str, batch: int) -> float:
    settings = KafkaSettings(bootstrap_servers=bootstrap, enable_idempotence=False)
    n = spool.depth()
    pub = SpoolPublisher(spool, settings, batch_size=batch)
    start = time.perf_counter()
    await pub.start()
    try:
        await eventually(lambda: spool.depth() == 0, 600)
    finally:
        await pub.stop()
    return n / (time.perf_counter() - start)


async def main(events: int, batches: list[int]) -> None:
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        for batch in batches:
            spool = Spool(Path(tmp) / f"spool-{batch}.db", topics=TopicNames())
            append_rate = fill(spool, events)
            rate = await drain(spool, broker.bootstrap, batch)
            spool.close()
            print(
                f"events={events} batch_size={batch}: append {append_rate:,.0f} events/s, "
                f"drain {rate:,.0f} events/s (includes producer start and topic creation)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, nargs="+", default=[500, 2000])
    args = parser.parse_args()
    asyncio.run(main(args.events, args.batch))
