"""The drain reads the spool only when it may find something: after an append (`wake`), or
when its last read did not reach the end (a full batch, or a batch cut at a barrier row)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.kafka.settings import KafkaSettings, TopicNames
from agent.publisher import SpoolPublisher
from agent.spool import Spool
from simulators.broker import EmbeddedBroker
from tests.delivery.waiting import eventually
from tests.support.events import numbered_events

pytestmark = pytest.mark.integration

BARRIER = "otwatch.test.barrier"


def counting_peeks(spool: Spool) -> list[int]:
    """Record how many rows each read of the spool returned."""
    reads: list[int] = []
    peek = spool.peek

    def counted(limit: int, *, after: int = 0) -> list[tuple[int, str, bytes, bytes]]:
        rows = peek(limit, after=after)
        reads.append(len(rows))
        return rows

    spool.peek = counted  # type: ignore[method-assign]
    return reads


async def test_rows_behind_a_barrier_go_without_waiting_for_a_wake_or_the_poll_tick(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """A batch cut at a barrier row did not read to the end: the rows behind it are read once
    the barrier row is acknowledged, not a poll interval (here a minute) later."""
    spool = Spool(tmp_path / "spool.db", topics=TopicNames())
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
    pub = SpoolPublisher(spool, settings, batch_size=100, poll_interval_s=60.0,
                         barrier_topics=frozenset({BARRIER}))
    await pub.start()
    try:
        spool.append(numbered_events(30), ahead=[(BARRIER, b"use-1", b"{}")])
        pub.wake()
        assert await eventually(lambda: spool.depth() == 0, 20), (
            f"{spool.depth()} rows behind the barrier still wait"
        )
    finally:
        await pub.stop()
        spool.close()


async def test_a_live_drain_reads_once_per_append(broker: EmbeddedBroker, tmp_path: Path) -> None:
    """One append, one read that finds its rows; no read that can only find nothing."""
    spool = Spool(tmp_path / "spool.db", topics=TopicNames())
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
    pub = SpoolPublisher(spool, settings, batch_size=100, poll_interval_s=60.0)
    await pub.start()
    try:
        spool.append(numbered_events(10))  # the producer started and the topics made first
        pub.wake()
        assert await eventually(lambda: spool.depth() == 0, 30)
        reads = counting_peeks(spool)
        for round_ in range(5):
            spool.append(numbered_events(40, start=10 + 40 * round_))
            pub.wake()
            assert await eventually(lambda: spool.depth() == 0, 20)
        assert reads == [40] * 5
    finally:
        await pub.stop()
        spool.close()
