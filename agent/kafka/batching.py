"""Send many messages as a few record batches: `Outbox`, with keys placed by `PartitionCache`.

``producer.send`` costs a coroutine, a partitioner call (pure-Python murmur2) and a future per
message: a quarter of the classifier's time when it sent each alert and record event that way.
An `Outbox` appends one batch's messages straight into per-partition record batches and sends
each with ``send_batch``; each key's partition comes from `PartitionCache`, which asks aiokafka's
own partitioner once per key. Messages land where ``send`` would put them, in order per
partition, acknowledged with ``acks`` as the producer is configured.

Order per partition across a failure needs more: with idempotence off (Tansu has no idempotent
producer) aiokafka fails a record batch instead of retrying it once ``request_timeout_ms`` has
passed since the batch was made, and a batch made later for the same partition, still queued
behind it, is delivered if the broker comes back in time: it lands before the failed one is
sent again. A `BatchChain` given to the `Outbox` prevents that: it hands a partition's record
batch to the producer only once the one before it was delivered and fails the batches behind a
failed one (`KeptBack`) without handing them over. aiokafka has one request in flight per
partition anyway, but it is not free: each batch waits for its predecessor's acknowledgement,
and every loop turn between that and the handover delays the sender's next request. So the
next batch is handed over from the callback that reports the acknowledgement, in the loop turn
before aiokafka's sender wakes, not from a task turns later. With the chain from a task, the
spool drain ran at about 0.6 of its earlier rate (paired quick benches, 2026-12-02); from the
callback (and with records appended straight into the C builder), at about 1.6 times that
(median of 6 paired quick drains, 2026-12-02).

Example::

    >>> partitions = PartitionCache()                 # one per producer, kept across batches
    >>> outbox = Outbox(producer, partitions)
    >>> outbox.add("otwatch.alerts", b"plant-1/press-01", body)
    >>> acked = await outbox.send()                   # sent; await acked for the broker's acks
    >>> chain = BatchChain(producer)                  # one per sending run, closed after it
    >>> Outbox(producer, partitions, chain)           # each partition's batches one at a time
    >>> await chain.close()
"""

from __future__ import annotations

import asyncio
import inspect
import types
from collections.abc import Coroutine, Generator
from functools import partial
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder


class PartitionCache:
    """Key → partition per topic, by aiokafka's `DefaultPartitioner` (the one ``send`` uses;
    our settings configure no other), so messages land where ``send`` would put them."""

    #: Record ids are keys too: forget them all now and then rather than grow without bound.
    MAX_KEYS = 100_000

    def __init__(self) -> None:
        self._partitioner = DefaultPartitioner()
        self._known: dict[str, tuple[list[int], dict[bytes, int]]] = {}

    async def refresh(self, producer: AIOKafkaProducer, topic: str) -> None:
        """Start over for a topic whose partitions changed (or that grew too many keys)."""
        partitions = sorted(await producer.partitions_for(topic))
        known = self._known.get(topic)
        if known is None or known[0] != partitions or len(known[1]) > self.MAX_KEYS:
            self._known[topic] = (partitions, {})

    def keys(self, topic: str) -> dict[bytes, int]:
        """The topic's known keys and their partitions (read-only: `partition` adds a key);
        `refresh` the topic first."""
        return self._known[topic][1]

    def partition(self, topic: str, key: bytes) -> int:
        """The key's partition; `refresh` the topic first."""
        partitions, by_key = self._known[topic]
        found = by_key.get(key)
        if found is None:
            found = by_key[key] = self._partitioner(key, partitions, partitions)
        return found


class KeptBack(KafkaError):  # type: ignore[misc]  # (aiokafka has no type hints)
    """A record batch a `BatchChain` did not hand to the producer: the one before it on its
    partition failed (that failure is the ``__cause__``). Nothing was sent: send it again."""


class BatchChain:
    """Per partition, record batches handed to the producer one after another: the next only
    once the one before was delivered; behind a failed (or abandoned) one, none is handed over
    and each fails with `KeptBack`. Used for a run of sends that ends at its first failure (one
    drain of the publisher): the rows of the failed batch and every one behind it are sent
    again, in order, by the next run, with a new chain. `close` it when the run ends."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        #: Per (topic, partition), the delivery of the last batch given to the chain.
        self._last: dict[tuple[str, int], asyncio.Future[Any]] = {}
        #: Per delivery, the batch kept back behind it (batch, topic, partition, its delivery).
        self._behind: dict[asyncio.Future[Any], tuple[Any, str, int, asyncio.Future[Any]]] = {}
        #: The deliveries of the batches not yet handed to the producer.
        self._kept: set[asyncio.Future[Any]] = set()
        #: The handovers under way (``send_batch`` may wait for metadata or queue space).
        self._handing: set[asyncio.Task[None]] = set()
        self._closed = False

    async def send_batch(self, batch: Any, topic: str, partition: int) -> asyncio.Future[Any]:
        """``producer.send_batch`` once the partition's batch before it was delivered; the
        wait for this batch's delivery (or for the failure that kept it back)."""
        before = self._last.get((topic, partition))
        delivery = self._last[(topic, partition)] = asyncio.get_running_loop().create_future()
        if before is None or (before.done() and delivered(before)):
            try:
                self._pass_on(await self._producer.send_batch(batch, topic, partition=partition),
                              delivery)
            except BaseException as exc:  # not handed over: the batches behind it neither
                _fail(delivery, exc)
                delivery.add_done_callback(retrieve)  # the caller gets the error
                raise
        else:
            self._kept.add(delivery)
            delivery.add_done_callback(self._kept.discard)  # (also when its caller cancels it)
            self._behind[before] = (batch, topic, partition, delivery)
            before.add_done_callback(self._after)  # (a delivery has one batch behind it)
        return delivery

    async def close(self) -> None:
        """Hand nothing more over: the batches kept back are abandoned (cancelled), and the
        handovers under way are cancelled and awaited."""
        self._closed = True
        handing = list(self._handing)
        for task in handing:
            task.cancel()
        for delivery in self._kept:
            delivery.cancel()
        self._kept.clear()
        if handing:
            await asyncio.wait(handing, timeout=1.0)

    def _pass_on(self, source: asyncio.Future[Any], delivery: asyncio.Future[Any]) -> None:
        """Give ``delivery`` the outcome of the producer's ``source`` once it has one."""
        source.add_done_callback(partial(self._delivered, delivery))

    def _delivered(self, delivery: asyncio.Future[Any], source: asyncio.Future[Any]) -> None:
        _copy_outcome(delivery, source)
        # The batch behind it now, not a loop turn later from the delivery's own callback:
        # this runs in the turn after the acknowledgement, before aiokafka's sender wakes
        # (its produce task ends, then its wait), so the batch makes the sender's next request.
        self._after(delivery)

    def _after(self, before: asyncio.Future[Any]) -> None:
        """Settle the batch behind a settled delivery: hand it over, or keep it back."""
        behind = self._behind.pop(before, None)
        if behind is None:  # none, or already handed over
            return
        batch, topic, partition, delivery = behind
        if delivery.done():  # abandoned (closed)
            return
        if self._closed or before.cancelled():
            self._kept.discard(delivery)
            delivery.cancel()
            return
        if (failure := before.exception()) is not None:
            self._kept.discard(delivery)
            kept = KeptBack(f"not sent: the record batch before it to {topic}/{partition} failed")
            kept.__cause__ = failure
            delivery.set_exception(kept)
            return
        # ``send_batch`` run here up to its first wait: with the topic's metadata known and
        # nothing queued for the partition (the batch before was delivered) it has none and
        # the batch is queued in this turn; otherwise a task awaits the rest of it.
        sending = self._producer.send_batch(batch, topic, partition=partition)
        if not inspect.iscoroutine(sending):  # another producer's awaitable: stepped alike
            sending = _awaited(sending)
        try:
            waiting = sending.send(None)
        except StopIteration as handed:
            self._kept.discard(delivery)
            self._pass_on(handed.value, delivery)
            return
        except BaseException as exc:  # the producer refuses: the delivery says so
            self._kept.discard(delivery)
            _fail(delivery, exc)
            if not isinstance(exc, Exception):
                raise
            return
        task = asyncio.get_running_loop().create_task(
            self._hand_over(sending, waiting, delivery)
        )
        self._handing.add(task)
        task.add_done_callback(self._handing.discard)

    async def _hand_over(
        self, sending: Coroutine[Any, Any, Any], waiting: Any, delivery: asyncio.Future[Any]
    ) -> None:
        try:
            self._pass_on(await _resume(sending, waiting), delivery)
        except BaseException as exc:  # a stop, or the producer refuses: the delivery says so
            _fail(delivery, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._kept.discard(delivery)
            sending.close()  # (cancelled while it waited: it stops there)


async def _awaited(awaitable: Any) -> Any:
    """A coroutine of any awaitable, for `BatchChain._after` to step by hand."""
    return await awaitable


@types.coroutine
def _resume(coroutine: Coroutine[Any, Any, Any], waiting: Any) -> Generator[Any, Any, Any]:
    """Await the rest of a coroutine already run up to its first wait (``waiting``, what it
    yielded then): what the awaiting task sends or throws in goes on to it."""
    while True:
        try:
            sent = yield waiting
        except BaseException as exc:
            try:
                waiting = coroutine.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                waiting = coroutine.send(sent)
            except StopIteration as stop:
                return stop.value


def delivered(future: asyncio.Future[Any]) -> bool:
    """Whether a done delivery succeeded."""
    return not future.cancelled() and future.exception() is None


def _copy_outcome(target: asyncio.Future[Any], source: asyncio.Future[Any]) -> None:
    if target.done():
        retrieve(source)
    elif source.cancelled():
        target.cancel()
    elif (exc := source.exception()) is not None:
        target.set_exception(exc)
    else:
        target.set_result(source.result())


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if future.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(exc)


class Outbox:
    """One batch's outgoing messages, appended straight into per-partition record batches."""

    def __init__(
        self, producer: AIOKafkaProducer, partitions: PartitionCache,
        chain: BatchChain | None = None,
    ) -> None:
        self._producer = producer
        self._partitions = partitions
        #: Hands the record batches over, one at a time per partition (None: all at once).
        self._chain = chain
        #: The messages in the order added, as runs of one topic: each run is filled with one
        #: lookup of its topic's partitions, not one per message.
        self._runs: list[tuple[str, list[tuple[bytes, bytes]]]] = []

    def add(self, topic: str, key: bytes, value: bytes) -> None:
        runs = self._runs
        if not runs or runs[-1][0] != topic:
            runs.append((topic, []))
        runs[-1][1].append((key, value))

    def add_all(self, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
        """`add` for many (key, value) messages to one topic, after those added before (the
        list is kept, not copied: add nothing more to it)."""
        if messages:
            self._runs.append((topic, messages))

    async def send(self) -> asyncio.Future[Any]:
        """Send every message, in order per partition; returns the wait for all the acks."""
        futures, _, error = await self._hand_over()
        handed = [f for f in futures if f is not None]  # (one per record batch, not message)
        if error is not None:
            for future in handed:
                future.add_done_callback(retrieve)  # abandoned: the caller gets the error
            raise error
        return asyncio.gather(*handed)

    async def send_each(self) -> tuple[list[asyncio.Future[Any] | None], KafkaError | None]:
        """Send every message, in order per partition; returns, per message in the order
        added, the wait for its record batch's ack (shared by the messages of one batch), and
        the error that stopped the sending: the messages of the batches not handed to the
        producer then have None (a batch handed over before the error is on its way)."""
        futures, where, error = await self._hand_over()
        if where is None:
            return [None] * sum(len(messages) for _, messages in self._runs), error
        return [futures[i] for i in where], error

    async def _hand_over(
        self,
    ) -> tuple[list[asyncio.Future[Any] | None], list[int] | None, KafkaError | None]:
        """Fill the record batches and hand them to the producer: the wait for each batch's
        ack (None: not handed over), each message's batch (None: the partitions were not
        known), and the error that stopped the sending."""
        runs = self._runs
        try:  # the topics' partitions (metadata: the broker may be away)
            for topic in {topic for topic, _ in runs}:
                await self._partitions.refresh(self._producer, topic)
        except KafkaError as exc:
            return [], None, exc
        # Filled first, then handed over, so each message's batch is known before any send.
        batches: list[tuple[str, int, Any]] = []
        #: Per batch, its record builder's ``append`` and the records in it so far (appended
        #: straight into aiokafka's C builder: see `_builder_append`).
        appends: list[Any] = []
        counts: list[int] = []
        where: list[int] = []
        #: Per topic, each partition's open batch (by position).
        open_by_topic: dict[str, dict[int, int]] = {}
        create_batch = self._producer.create_batch
        for topic, messages in runs:
            by_key = self._partitions.keys(topic)
            open_batches = open_by_topic.setdefault(topic, {})
            for key, value in messages:
                partition = by_key.get(key)
                if partition is None:
                    partition = self._partitions.partition(topic, key)
                i = open_batches.get(partition)
                if i is None or appends[i](counts[i], None, key, value, _NO_HEADERS) is None:
                    batch = create_batch()  # none yet, or the open one is full
                    append = _builder_append(batch)
                    if append(0, None, key, value, _NO_HEADERS) is None:
                        raise KafkaError(f"a {len(value)}-byte message to {topic} exceeds a batch")
                    i = open_batches[partition] = len(batches)
                    batches.append((topic, partition, batch))
                    appends.append(append)
                    counts.append(0)
                counts[i] += 1
                where.append(i)
        for (_, _, batch), count in zip(batches, counts, strict=True):
            batch._relative_offset = count  # what its own append would have counted
        futures: list[asyncio.Future[Any] | None] = [None] * len(batches)
        error: KafkaError | None = None
        chain = self._chain
        try:
            for i, (topic, partition, batch) in enumerate(batches):
                # Closed: nothing more goes in, so the sender takes it at once instead of
                # letting it linger (``linger_ms``) for records that will not come.
                batch.close()
                if chain is None:
                    futures[i] = await self._producer.send_batch(batch, topic, partition=partition)
                else:
                    futures[i] = await chain.send_batch(batch, topic, partition)
        except KafkaError as exc:
            error = exc
        return futures, where, error


#: No record headers (shared: the builder only reads it).
_NO_HEADERS: list[tuple[str, bytes | None]] = []


#: The private members of aiokafka's ``BatchBuilder`` (as of 0.14) that `_builder_append` uses.
_BUILDER_MEMBERS = ("_builder", "_relative_offset", "_key_serializer", "_value_serializer")


def _builder_append(batch: Any) -> Any:
    """The ``append(offset, timestamp, key, value, headers)`` of an empty aiokafka 0.14
    ``BatchBuilder``'s record builder (C), or None when the message does not fit.

    ``BatchBuilder.append`` is a Python wrapper around it that costs about half a microsecond
    a message: it serializes (we configure no serializer: the bytes are the record) and counts
    each record's offset in the batch, from 0, in ``_relative_offset``, which the caller sets
    once the batch is filled (aiokafka reads it as the batch's record count).

    Any other batch (a stand-in, or an aiokafka whose ``BatchBuilder`` lacks these private
    members: pyproject allows 0.12 to 0.14, and only 0.14 was read) is filled through its own
    public ``append``, which counts the offsets itself (the caller's count then sets the same
    number)."""
    if not isinstance(batch, BatchBuilder) or not all(
        hasattr(batch, name) for name in _BUILDER_MEMBERS
    ):
        return lambda _offset, timestamp, key, value, _headers: batch.append(
            key=key, value=value, timestamp=timestamp)
    if batch._key_serializer is not None or batch._value_serializer is not None:
        raise TypeError("Outbox sends bytes: the producer must have no key or value serializer")
    if batch._relative_offset != 0 or batch.closed():
        raise ValueError("Outbox fills only new record batches")
    return batch._builder.append


def retrieve(future: asyncio.Future[Any]) -> None:
    """Read a delivery's outcome (a done-callback for one given up on): no "exception was
    never retrieved" warning for an abandoned send."""
    if not future.cancelled():
        future.exception()
