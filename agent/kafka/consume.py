"""The read loop every long-running Kafka reader uses, and whether a reader has caught up.

`consume_batches` reads batches with ``getmany`` and hands each to the caller, until its task is
cancelled: also when aiokafka swallowed the cancel (`agent.runtime.cancel`), which would
otherwise keep a ``while True`` loop reading after stop and hang the process's shutdown.

Example::

    >>> await consume_batches(consumer, on_batch, timeout_ms=500, max_records=500)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError

from agent.runtime.cancel import raise_if_cancel_swallowed

#: Messages by partition, as ``getmany`` returns them.
Batches = dict[TopicPartition, list[Any]]


async def consume_batches(
    consumer: AIOKafkaConsumer,
    on_batch: Callable[[Batches], Awaitable[None]],
    *,
    timeout_ms: int,
    max_records: int | None = None,
) -> NoReturn:
    """Read and hand over batches (empty ones too: the caller's clock runs) until cancelled."""
    while True:
        raise_if_cancel_swallowed()
        batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        await on_batch(batches)


async def caught_up(consumer: AIOKafkaConsumer, limit_s: float = 1.0) -> bool:
    """True when every assigned partition has been read up to its highwater."""
    assigned = consumer.assignment()
    if not assigned:
        return False
    for tp in assigned:
        highwater = consumer.highwater(tp)
        if highwater is None:
            return False
        try:
            position = await asyncio.wait_for(consumer.position(tp), limit_s)
        except (TimeoutError, KafkaError, IllegalStateError):
            return False
        if position < highwater:
            return False
    return True
