"""The publisher's CPU per event, as the agent drives it and after an outage (not a test).

Run: ``.venv/bin/python -m tests.bench.measure_publisher_cpu [--rounds 200] [--drain 20000]``.

Live: ``--rounds`` times, 100 events (8 controllers) are appended in one transaction, the
publisher is woken, and the next append waits until the broker has acknowledged them (as the
OPC UA agent appends one notification batch and wakes the drain). Drain: ``--drain`` events
already in the spool are drained. Each figure is this process's CPU time (user + system, the
appends' included in live) per event: comparable on a loaded machine, unlike rates. The
broker (Tansu) is a separate process, so its CPU is not counted. To compare two versions,
run this module from each tree in turn (``cd <tree> && <venv>/bin/python -m ...``).
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
from tests.support.events import numbered_events

BATCH = 100


def settings(bootstrap: str) -> KafkaSettings:
    """The product's defaults, without idempotence (the embedded broker has none)."""
    return KafkaSettings(bootstrap_servers=bootstrap, enable_idempotence=False)


async def empty(spool: Spool, limit_s: float) -> None:
    """Wait until the broker has acknowledged every row (polled every 2 ms: little CPU)."""
    deadline = time.monotonic() + limit_s
    while spool.depth():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{spool.depth()} events still in the spool after {limit_s} s")
        await asyncio.sleep(0.002)


async def live(spool: Spool, bootstrap: str, rounds: int) -> float:
    """CPU µs per event with appends of `BATCH` and a wake each, one batch at a time."""
    events = numbered_events(rounds * BATCH, controllers=8)
    pub = SpoolPublisher(spool, settings(bootstrap))
    await pub.start()
    try:
        spool.append(events[:BATCH])  # the producer started and the topics made: not counted
        pub.wake()
        await empty(spool, 60)
        start = time.process_time()
        for i in range(BATCH, len(events), BATCH):
            spool.append(events[i : i + BATCH])
            pub.wake()
            await empty(spool, 60)
        return 1e6 * (time.process_time() - start) / (len(events) - BATCH)
    finally:
        await pub.stop()


async def drain(spool: Spool, bootstrap: str, count: int) -> float:
    """CPU µs per event draining ``count`` events already in the spool."""
    events = numbered_events(count, controllers=8)
    for i in range(0, count, BATCH):
        spool.append(events[i : i + BATCH])
    pub = SpoolPublisher(spool, settings(bootstrap))
    start = time.process_time()
    await pub.start()
    try:
        await empty(spool, 600)
        return 1e6 * (time.process_time() - start) / count
    finally:
        await pub.stop()


async def main(rounds: int, count: int) -> None:
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        spool = Spool(Path(tmp) / "live.db", topics=TopicNames())
        per_live = await live(spool, broker.bootstrap, rounds)
        spool.close()
        spool = Spool(Path(tmp) / "drain.db", topics=TopicNames())
        per_drain = await drain(spool, broker.bootstrap, count)
        spool.close()
    print(f"live {per_live:.1f} us CPU per event (appends included); "
          f"drain {per_drain:.1f} us CPU per event")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--drain", type=int, default=20_000)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.drain))
