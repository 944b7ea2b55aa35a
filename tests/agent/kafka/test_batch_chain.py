"""`BatchChain`: a partition's record batches reach the producer one at a time, each only once
the one before it was delivered; none behind a failure or after `close` (the producer here only
keeps what it is handed and lets the test settle each delivery)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import RequestTimedOutError

from agent.kafka.batching import BatchChain, KeptBack


class HoldingProducer:
    """Keeps each batch handed over with its delivery, for the test to settle."""

    def __init__(self) -> None:
        self.handed: list[tuple[str, int, str, asyncio.Future[Any]]] = []

    async def send_batch(self, batch: str, topic: str, *, partition: int) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.handed.append((topic, partition, batch, future))
        return future

    def names(self) -> list[str]:
        return [batch for _, _, batch, _ in self.handed]

    def settle(self, name: str, error: BaseException | None = None) -> None:
        future = next(f for _, _, batch, f in self.handed if batch == name)
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


async def settled() -> None:
    for _ in range(5):  # the chain's callbacks and its handover task take a few loop turns
        await asyncio.sleep(0)


async def test_a_partitions_next_batch_is_handed_over_once_the_one_before_was_delivered() -> None:
    producer = HoldingProducer()
    chain = BatchChain(producer)  # type: ignore[arg-type]
    p0_first = await chain.send_batch("p0-first", "t", 0)
    p0_second = await chain.send_batch("p0-second", "t", 0)
    p1_first = await chain.send_batch("p1-first", "t", 1)
    await settled()
    assert producer.names() == ["p0-first", "p1-first"]  # other partitions are not held back
    producer.settle("p0-first")
    await settled()
    assert p0_first.done() and not p0_second.done()
    assert producer.names() == ["p0-first", "p1-first", "p0-second"]
    producer.settle("p0-second")
    producer.settle("p1-first")
    await asyncio.gather(p0_second, p1_first)
    await chain.close()


async def test_the_batches_behind_a_failed_one_are_kept_back_with_its_error() -> None:
    producer = HoldingProducer()
    chain = BatchChain(producer)  # type: ignore[arg-type]
    first = await chain.send_batch("first", "t", 0)
    behind = [await chain.send_batch(f"behind-{i}", "t", 0) for i in range(2)]
    timeout = RequestTimedOutError()
    producer.settle("first", timeout)
    await settled()
    late = await chain.send_batch("late", "t", 0)  # handed to the chain after the failure
    await settled()
    assert first.exception() is timeout
    for kept in [*behind, late]:
        error = kept.exception()
        assert isinstance(error, KeptBack)
    assert producer.names() == ["first"]
    assert behind[0].exception().__cause__ is timeout  # type: ignore[union-attr]
    await chain.close()


async def test_close_abandons_the_kept_back_batches_and_hands_nothing_more_over() -> None:
    producer = HoldingProducer()
    chain = BatchChain(producer)  # type: ignore[arg-type]
    first = await chain.send_batch("first", "t", 0)
    kept = await chain.send_batch("kept", "t", 0)
    await chain.close()
    producer.settle("first")  # delivered after the run ended: the one behind stays unsent
    await settled()
    assert first.done() and kept.cancelled()
    assert producer.names() == ["first"]
    with pytest.raises(asyncio.CancelledError):
        await kept


async def test_the_next_batch_is_handed_over_in_the_loop_turn_after_the_ack() -> None:
    # aiokafka's sender wakes two turns after a produce response: a batch handed over later
    # misses its next request and waits a round trip more.
    producer = HoldingProducer()
    chain = BatchChain(producer)  # type: ignore[arg-type]
    first = await chain.send_batch("first", "t", 0)
    second = await chain.send_batch("second", "t", 0)
    producer.settle("first")
    await asyncio.sleep(0)  # one turn: the ack's callbacks
    assert first.done() and producer.names() == ["first", "second"]
    producer.settle("second")
    await second
    await chain.close()


class WaitingProducer(HoldingProducer):
    """Makes each handover after the first wait (as for queue space) until ``go`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()

    async def send_batch(self, batch: str, topic: str, *, partition: int) -> asyncio.Future[Any]:
        if self.handed:
            await self.go.wait()
        return await super().send_batch(batch, topic, partition=partition)


async def test_a_handover_that_has_to_wait_finishes_in_a_task() -> None:
    producer = WaitingProducer()
    chain = BatchChain(producer)  # type: ignore[arg-type]
    await chain.send_batch("first", "t", 0)
    second = await chain.send_batch("second", "t", 0)
    producer.settle("first")
    await settled()
    assert producer.names() == ["first"] and not second.done()
    producer.go.set()
    await settled()
    assert producer.names() == ["first", "second"] and not second.done()
    producer.settle("second", RequestTimedOutError())
    with pytest.raises(RequestTimedOutError):
        await second
    await chain.close()


async def test_close_cancels_a_handover_that_waits() -> None:
    producer = WaitingProducer()
    chain = BatchChain(producer)  # type: ignore[arg-type]
    await chain.send_batch("first", "t", 0)
    second = await chain.send_batch("second", "t", 0)
    third = await chain.send_batch("third", "t", 0)
    producer.settle("first")
    await settled()
    await chain.close()
    producer.go.set()
    await settled()
    assert second.cancelled() and third.cancelled()
    assert producer.names() == ["first"]


async def test_a_kept_back_batch_its_caller_cancels_is_no_longer_held() -> None:
    producer = HoldingProducer()
    chain = BatchChain(producer)  # type: ignore[arg-type]
    await chain.send_batch("first", "t", 0)
    second = await chain.send_batch("second", "t", 0)
    second.cancel()
    await settled()
    assert chain._kept == set()  # (not held until close)
    producer.settle("first")
    await settled()
    assert producer.names() == ["first"]  # the cancelled one is never handed over
    await chain.close()


class AwaitableProducer(HoldingProducer):
    """A producer whose ``send_batch`` returns an awaitable that is not a coroutine."""

    def send_batch(self, batch: str, topic: str, *, partition: int) -> Any:  # type: ignore[override]
        return asyncio.ensure_future(super().send_batch(batch, topic, partition=partition))


async def test_a_producer_returning_another_awaitable_still_gets_the_next_batch() -> None:
    producer = AwaitableProducer()
    chain = BatchChain(producer)  # type: ignore[arg-type]
    await chain.send_batch("first", "t", 0)
    second = await chain.send_batch("second", "t", 0)
    await settled()
    producer.settle("first")
    await settled()
    assert producer.names() == ["first", "second"]
    producer.settle("second")
    await second
    await chain.close()
