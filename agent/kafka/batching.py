"""Send many messages as a few record batches: `Outbox`, with keys placed by `PartitionCache`.

``producer.send`` costs a coroutine, a partitioner call (pure-Python murmur2) and a future per
message: a quarter of the classifier's time when it sent each alert and record event that way.
An `Outbox` appends one batch's messages straight into per-partition record batches and sends
each with ``send_batch``; each key's partition comes from `PartitionCache`, which asks aiokafka's
own partitioner once per key. Messages land where ``send`` would put them, in order per
partition, acknowledged with ``acks`` as the producer is configured.

Example::

    >>> partitions = PartitionCache()                 # one per producer, kept across batches
    >>> outbox = Outbox(producer, partitions)
    >>> outbox.add("otwatch.alerts", b"plant-1/press-01", body)
    >>> acked = await outbox.send()                   # sent; await acked for the broker's acks
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner


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


class Outbox:
    """One batch's outgoing messages, appended straight into per-partition record batches."""

    def __init__(self, producer: AIOKafkaProducer, partitions: PartitionCache) -> None:
        self._producer = producer
        self._partitions = partitions
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
                if i is None or batches[i][2].append(key=key, value=value, timestamp=None) is None:
                    batch = create_batch()  # none yet, or the open one is full
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        raise KafkaError(f"a {len(value)}-byte message to {topic} exceeds a batch")
                    i = open_batches[partition] = len(batches)
                    batches.append((topic, partition, batch))
                where.append(i)
        futures: list[asyncio.Future[Any] | None] = [None] * len(batches)
        error: KafkaError | None = None
        try:
            for i, (topic, partition, batch) in enumerate(batches):
                # Closed: nothing more goes in, so the sender takes it at once instead of
                # letting it linger (``linger_ms``) for records that will not come.
                batch.close()
                futures[i] = await self._producer.send_batch(batch, topic, partition=partition)
        except KafkaError as exc:
            error = exc
        return futures, where, error


def retrieve(future: asyncio.Future[Any]) -> None:
    """Read a delivery's outcome (a done-callback for one given up on): no "exception was
    never retrieved" warning for an abandoned send."""
    if not future.cancelled():
        future.exception()
