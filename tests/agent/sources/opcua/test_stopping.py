"""A source must stop when cancelled, even while notifications keep arriving."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from asyncua.common.subscription import Subscription

from agent.sources.opcua.subscribe import next_event


class Stream:
    """Stands in for a subscription's notification iterator (its queue where asyncua keeps it)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self._event_queue = self.queue

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> Any:
        item = await self.queue.get()
        if item is None:  # asyncua's end of the iterator
            raise StopAsyncIteration
        return item


async def test_a_cancellation_that_meets_a_notification_is_not_lost() -> None:
    stream = Stream()
    task = asyncio.create_task(next_event(cast(Subscription, stream), 10.0))
    await asyncio.sleep(0)  # waiting for the next notification
    stream.queue.put_nowait("notification")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stream.queue.qsize() == 1  # and the notification is still there


async def test_a_quiet_subscription_gives_none_after_the_wait() -> None:
    assert await next_event(cast(Subscription, Stream()), 0.01) is None


async def test_queued_notifications_are_taken_in_order_then_the_wait_runs() -> None:
    stream = Stream()
    for n in range(3):
        stream.queue.put_nowait(f"notification {n}")
    got = [await next_event(cast(Subscription, stream), 0.0) for _ in range(4)]
    assert got == ["notification 0", "notification 1", "notification 2", None]
    stream.queue.put_nowait(None)
    with pytest.raises(StopAsyncIteration):
        await next_event(cast(Subscription, stream), 0.0)


def test_asyncua_keeps_the_notifications_where_the_source_looks() -> None:
    """If asyncua moves its queue, the source still works (the timed path), only slower:
    this says so."""
    sub = Subscription(cast(Any, None), cast(Any, None), queue_maxsize=10)
    assert isinstance(sub._event_queue, asyncio.Queue)
