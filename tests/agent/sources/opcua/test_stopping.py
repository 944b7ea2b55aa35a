"""A source must stop when cancelled, even while notifications keep arriving."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from asyncua.common.subscription import Subscription

from agent.sources.opcua.subscribe import next_event


class Stream:
    """Stands in for a subscription's notification iterator."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> Any:
        return await self.queue.get()


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
