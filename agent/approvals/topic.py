"""The ``otwatch.approvals`` topic as a source of approved change records, and the
``otwatch.approvals.used`` topic as the record of single-use approvals used up.

MES/QMS change control publishes one record per approval, keyed by the approval id; a tombstone
(null value) or a record with ``status: revoked`` revokes it. The agent reads the whole topic
from the beginning on every start, without a consumer group (no rebalances, no committed offsets:
the topic is a table, and every agent needs all of it), and keeps reading for new records.

`UsedApprovalsSource` reads the uses the agents recorded (`agent.approvals.uses`) the same way;
a topic that does not exist yet holds no use, so it counts as read.

Example::

    source = ApprovalTopicSource(book, bootstrap_servers="127.0.0.1:9092")
    await source.start()
    await source.wait_loaded(within_s=10)   # judge changes only once the table is read
    ...
    await source.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from agent.approvals import metrics
from agent.approvals.book import ApprovalBook
from agent.kafka.client_logs import demote_kafka_consumer_logs
from agent.kafka.consume import Batches, consume_batches
from agent.kafka.settings import TopicNames
from agent.runtime.outage import OutageLog

log = logging.getLogger(__name__)

DEFAULT_TOPIC = TopicNames().approvals
DEFAULT_USED_TOPIC = TopicNames().approvals_used
#: Consumer settings the reader owns: every agent reads the whole topic, with no group.
RESERVED_KWARGS = frozenset(
    {"bootstrap_servers", "group_id", "enable_auto_commit", "auto_offset_reset"}
)


class _TopicMissing(Exception):
    """The topic does not exist (yet): read again after a pause, with a new consumer."""


class _TopicTable:
    """Reads one topic as a table into an ApprovalBook; owns one background task."""

    #: A topic that does not exist holds nothing: read (True), or not there yet (False).
    missing_is_read = False
    #: 1 while this reader is assigned and reading.
    _up = metrics.TOPIC_UP

    def __init__(
        self,
        book: ApprovalBook,
        *,
        bootstrap_servers: str,
        topic: str = DEFAULT_TOPIC,
        consumer_kwargs: Mapping[str, Any] | None = None,
        retry_s: float = 2.0,
        poll_ms: int = 500,
        same_outage: Callable[[], bool] | None = None,
    ) -> None:
        self._book = book
        #: True while another part of the process already reports the broker's outage (the
        #: agent's spool publisher): this reader's failure is then logged at DEBUG only.
        self._same_outage = same_outage
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._kwargs = dict(consumer_kwargs or {})
        reserved = sorted(RESERVED_KWARGS & self._kwargs.keys())
        if reserved:
            raise ValueError(
                f"consumer_kwargs: {', '.join(reserved)} is set by the approvals topic reader "
                "(fix: remove it; the topic is read group-less from the beginning)"
            )
        self._retry_s = retry_s
        self._poll_ms = poll_ms
        self._task: asyncio.Task[None] | None = None
        self._loaded = asyncio.Event()
        #: Set once the topic is read, or once reading it failed: waiting longer for a broker
        #: that is away would only delay the agent's start (`wait_settled`).
        self._settled = asyncio.Event()
        self._outage = OutageLog(
            log, f"approvals topic {topic} unreadable", f"approvals topic {topic} readable again"
        )

    @property
    def loaded(self) -> bool:
        """True once every record present at assignment time has been applied."""
        return self._loaded.is_set()

    async def start(self) -> None:
        """Start reading in the background; never waits for the broker."""
        if self._task is not None:
            return
        demote_kafka_consumer_logs()  # the outage is this reader's (or the publisher's) to log
        self._task = asyncio.create_task(self._run(), name=f"approvals-topic:{self._topic}")
        self._task.add_done_callback(self._on_done)

    async def wait_settled(self) -> bool:
        """Until the topic is read to its end (True) or a first attempt failed (False)."""
        await self._settled.wait()
        return self._loaded.is_set()

    async def wait_loaded(self, within_s: float) -> bool:
        """Wait until the topic has been read up to its end; False if that took too long."""
        try:
            await asyncio.wait_for(self._loaded.wait(), within_s)
        except TimeoutError:
            return False
        return True

    async def stop(self, grace_s: float = 10.0) -> None:
        """Cancel the reader and wait for it (and its consumer) to close, at most ``grace_s``."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, grace_s)
        self._up.set(0)

    def _on_done(self, task: asyncio.Task[None]) -> None:
        self._up.set(0)
        if not task.cancelled() and task.exception() is not None:
            log.error("topic %s reader stopped: %r", self._topic, task.exception())

    def _apply(self, records: list[Any]) -> None:
        raise NotImplementedError

    def _mark_loaded(self) -> None:
        if not self._loaded.is_set():
            log.info("topic %s read to its end", self._topic)
            self._loaded.set()
        self._settled.set()

    async def _run(self) -> None:
        """Read the topic; on a broker error, log once, wait and read it again from the start."""
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                **self._kwargs,
            )
            try:
                await consumer.start()
                await self._read(consumer)
            except _TopicMissing as exc:
                if self.missing_is_read:
                    self._outage.success()
                    self._mark_loaded()
                else:
                    self._outage.failure(str(exc))
                self._settled.set()
            except (KafkaError, OSError) as exc:
                self._settled.set()
                if self._same_outage is not None and self._same_outage() and not self._outage.down:
                    log.debug("topic %s unreadable while the broker is away: %r", self._topic, exc)
                else:
                    self._outage.failure(repr(exc))
            finally:
                self._up.set(0)
                await self._close(consumer)
            await asyncio.sleep(self._retry_s)

    async def _close(self, consumer: AIOKafkaConsumer) -> None:
        with contextlib.suppress(KafkaError, OSError, TimeoutError):
            await asyncio.wait_for(consumer.stop(), 5.0)

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        """All partitions of the topic, as the consumer's metadata knew them at its start.

        A topic created later is only seen by a new consumer (the client's own metadata is not
        refreshed by ``topics()``), so a missing topic ends this read and ``_run`` starts over.
        """
        numbers = consumer.partitions_for_topic(self._topic)
        if not numbers:
            raise _TopicMissing("it does not exist yet; waiting for it")
        return [TopicPartition(self._topic, n) for n in sorted(numbers)]

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        partitions = await self._partitions(consumer)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        self._outage.success()
        self._up.set(1)
        log.info("reading topic %s (%d partitions)", self._topic, len(partitions))

        async def apply(batches: Batches) -> None:
            for records in batches.values():
                self._apply(records)
            if not self._loaded.is_set() and await self._caught_up(consumer, ends):
                self._mark_loaded()

        await consume_batches(consumer, apply, timeout_ms=self._poll_ms)

    async def _caught_up(self, consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if await consumer.position(tp) < end:
                return False
        return True


class ApprovalTopicSource(_TopicTable):
    """Feeds an ApprovalBook from the approvals topic (records, revocations, tombstones)."""

    def _apply(self, records: list[Any]) -> None:
        for rec in records:
            self._book.apply_topic_record(rec.key, rec.value)


class UsedApprovalsSource(_TopicTable):
    """Feeds an ApprovalBook the uses of single-use approvals recorded on Kafka; once read to
    its end, the book's single-use approvals may authorise again (`ApprovalBook.uses_loaded`).

    Example::

        source = UsedApprovalsSource(book, bootstrap_servers=..., topic="otwatch.approvals.used")
        await source.start()
    """

    missing_is_read = True
    _up = metrics.USED_TOPIC_UP

    def __init__(self, book: ApprovalBook, *, bootstrap_servers: str,
                 topic: str = DEFAULT_USED_TOPIC, **kwargs: Any) -> None:
        super().__init__(book, bootstrap_servers=bootstrap_servers, topic=topic, **kwargs)

    def _apply(self, records: list[Any]) -> None:
        self._book.apply_used_records((rec.key, rec.value) for rec in records)

    def _mark_loaded(self) -> None:
        super()._mark_loaded()
        self._book.uses_loaded()
