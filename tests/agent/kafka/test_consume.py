"""The shared read loop ends on cancel even when the client swallowed the CancelledError.

``SwallowingConsumer`` stands in for aiokafka's consumer at the one place that matters here:
its ``getmany`` catches the cancel meant for the reader (aio-libs/aiokafka#983).
"""

from __future__ import annotations

import asyncio
from typing import Any

from agent.kafka.consume import Batches, consume_batches


class SwallowingConsumer:
    def __init__(self) -> None:
        self.reads = 0

    async def getmany(self, timeout_ms: int, max_records: int | None = None) -> Batches:
        self.reads += 1
        try:
            await asyncio.sleep(timeout_ms / 1000)
        except asyncio.CancelledError:
            pass  # what the library does: the caller never sees the cancel
        return {}


async def test_the_loop_hands_over_every_batch_and_ends_on_a_swallowed_cancel() -> None:
    consumer = SwallowingConsumer()
    handed: list[Batches] = []

    async def on_batch(batches: Batches) -> None:
        handed.append(batches)

    consumer_any: Any = consumer
    task = asyncio.create_task(consume_batches(consumer_any, on_batch, timeout_ms=20))
    await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.wait({task}, timeout=5)
    assert task.done() and task.cancelled()
    assert consumer.reads >= 2 and len(handed) >= 1
