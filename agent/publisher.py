"""Drain the spool to Kafka: acks=all, in order per controller, removing only what was acknowledged.

The :class:`SpoolPublisher` owns one background task. It sends the oldest rows of the spool as
a batch (appended straight into per-partition record batches, `agent.kafka.batching.Outbox`:
``producer.send`` per row, a coroutine, a future and a partitioner call each, was about half
of the publisher's time), awaits every delivery, removes from the spool the longest
acknowledged prefix, and on any failure starts again from the oldest unacknowledged row.
While one batch waits for the broker, the next two are already sent (`PIPELINE_DEPTH`), so a
drain after an outage runs at the producer's pace rather than a round trip and a spool write
per batch.
A resend therefore carries the same bytes and the same ``event_id``; consumers dedupe on it.
Kafka keeps one controller's events in one partition (key ``<site>/<controller>``), and each
partition's record batches are handed to the producer one at a time (`BatchChain`, one per
drain): the next only once the one before was delivered, none behind a failure. That, not
aiokafka's one request in flight per partition, keeps per-controller order: with idempotence
off aiokafka fails a batch whose ``request_timeout_ms`` has run out, and would deliver a later
batch already queued behind it before the failed rows are sent again. So the first arrival of
each event is in seq order per controller; a resend repeats events already delivered.

A row the broker refuses for good (`refusal`: too large, corrupt, an invalid timestamp or
format: retrying cannot help) would otherwise sit at the head of the spool and hold back
every event behind it. It is moved to the spool's quarantine (`Spool.quarantine`: kept,
counted, logged once, reported in the heartbeat) and the drain goes on. A refusal the
client makes itself (over ``max_request_size``: checked here, as ``producer.send`` would) is
about that record alone; one the broker sends for a record batch fails every row in it, and
each of them is then sent alone (``producer.send``) before it is quarantined, so the records
batched with a refused one are never set aside; the batches behind it on its partition were
kept back (`KeptBack`) and the next drain sends them, in order. Errors that would refuse every
record alike (authorization, an unknown topic, a broken broker) are not quarantined: they are
retried and logged as an outage, so the queue is never emptied into quarantine by a
misconfiguration.

A row to one of the ``barrier_topics`` (the uses of single-use approvals, `agent.approvals.uses`)
ends its batch: the rows behind it, the event that used the approval among them, are sent only
once the broker has acknowledged it. So an event is never on Kafka as authorized while the use
that authorised it is not.

The broker being down is normal life at the edge, not an error to raise: the task retries with
capped exponential backoff, logs the outage once at ERROR (repeats at DEBUG until a success),
and ``otwatch_agent_broker_up`` says whether the broker is reachable. When TLS is configured and
the connection fails, the failure is probed and explained in terms of the setting to fix
(`agent.kafka.startup.start_client`).

Example::

    >>> pub = SpoolPublisher(spool, KafkaSettings(enable_idempotence=False))
    >>> await pub.start()
    >>> spool.append(events); pub.wake()
    >>> await pub.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter, deque
from typing import Any, cast

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidMessageError,
    InvalidTimestampError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    UnknownError,
    UnsupportedForMessageFormatError,
)
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from prometheus_client import Counter as MetricCounter
from prometheus_client import Gauge

from agent.kafka.batching import BatchChain, KeptBack, Outbox, PartitionCache, delivered, retrieve
from agent.kafka.client_logs import demote_kafka_client_logs
from agent.kafka.settings import KafkaSettings
from agent.kafka.startup import TRANSIENT, start_client
from agent.kafka.topics import ensure_topics
from agent.runtime.backoff import Backoff
from agent.runtime.outage import OutageLog
from agent.runtime.tasks import log_task_crash
from agent.spool import Row, Spool

__all__ = ["SpoolPublisher", "refusal"]

log = logging.getLogger(__name__)

PUBLISHED = MetricCounter(
    "otwatch_agent_published_total", "Events acknowledged by the broker", ["topic"]
)
PUBLISH_FAILURES = MetricCounter(
    "otwatch_agent_publish_failures_total", "Failed attempts to reach or publish to the broker"
)
BROKER_UP = Gauge("otwatch_agent_broker_up", "1 when the last contact with the broker succeeded")

#: Batches handed to the producer and not yet settled, at most (the oldest is awaited first).
PIPELINE_DEPTH = 3
#: Acknowledged rows waiting for deletion that make a compaction due at once (`_compaction_due`).
COMPACT_ROWS = 1_000
#: aiokafka's own default for ``max_request_size`` (our settings may set another).
DEFAULT_MAX_REQUEST_SIZE = 1_048_576


#: The broker's (or the client's) answers about one record's contents: no retry changes them.
RECORD_REFUSALS: tuple[type[BaseException], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
    InvalidMessageError,
    InvalidTimestampError,
    UnsupportedForMessageFormatError,
)
#: A broker error aiokafka has no name for (INVALID_RECORD among them): a refusal of the record
#: only when the record alone gets it and the next record gets through (see `_settle_all`).
UNNAMED_REFUSALS: tuple[type[BaseException], ...] = (UnknownError,)


def refusal(exc: BaseException) -> str | None:
    """``"<error name>: <text>"`` when ``exc`` refuses one record for good, else None."""
    if isinstance(exc, RECORD_REFUSALS + UNNAMED_REFUSALS):
        return f"{type(exc).__name__}: {exc}"
    return None


class _Flight:
    """One batch handed to the producer and not yet settled."""

    def __init__(self, rows: list[Row], barrier_topics: frozenset[str]) -> None:
        self.rows = rows
        self.last_id = rows[-1][0]
        #: Per row, in row order, up to the first that was not handed over: its record batch's
        #: delivery (shared with its batch-mates), or the client's refusal of it alone.
        self.sent: list[tuple[Row, asyncio.Future[Any] | BaseException]] = []
        #: Every delivery handed to the producer, once each.
        self.deliveries: list[asyncio.Future[Any]] = []
        self.send_error: BaseException | None = None
        #: Every row was handed to the producer (none refused by the client, no send failed).
        self.all_handed = False
        self._barrier = rows[-1][1] in barrier_topics

    @property
    def open(self) -> bool:
        """Whether rows behind this batch may be sent before it is settled: not past a
        barrier row (`SpoolPublisher` docstring), nor past a send that failed."""
        return self.send_error is None and not self._barrier

    def forget(self) -> None:
        """Abandon the deliveries (a failure or a stop came first): their outcome is not
        waited for; the rows stay in the spool and are sent again."""
        for delivery in self.deliveries:
            delivery.add_done_callback(retrieve)


def _delivered(outcome: asyncio.Future[Any] | BaseException) -> bool:
    return isinstance(outcome, asyncio.Future) and delivered(outcome)


class SpoolPublisher:
    """Owns the drain task from the spool to Kafka; see the module docstring."""

    def __init__(
        self,
        spool: Spool,
        settings: KafkaSettings,
        *,
        batch_size: int = 1000,
        poll_interval_s: float = 1.0,
        barrier_topics: frozenset[str] = frozenset(),
    ) -> None:
        self.spool = spool
        self.barrier_topics = barrier_topics
        self.settings = settings
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.last_error: str | None = None
        self._producer: AIOKafkaProducer | None = None
        self._kwargs: dict[str, Any] = {}
        self._partitions = PartitionCache()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._connected = False
        self._compacted_at = -math.inf
        where = f"Kafka at {settings.bootstrap_servers}"
        self._outage = OutageLog(
            log, f"{where} unreachable", f"{where} reachable again", failures=PUBLISH_FAILURES
        )

    @property
    def connected(self) -> bool:
        """True when the last contact with the broker succeeded."""
        return self._connected

    async def start(self) -> None:
        """Start the drain task. Raises only for unusable settings (KafkaSettingsError)."""
        if self._task is not None:
            return
        # fail fast on a bad setting
        self._kwargs = self.settings.producer_kwargs()
        demote_kafka_client_logs()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="otwatch-spool-publisher")
        self._task.add_done_callback(log_task_crash)

    def wake(self) -> None:
        """Tell the drain that the spool has new events (no wait for the poll tick)."""
        self._wake.set()

    def stop_soon(self) -> None:
        """Let the drain end at its next step, without a word: a stop is coming (`stop`).
        A broker failure noticed from now on is not logged as an outage."""
        self._stopping = True
        self._wake.set()

    async def stop(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - the agreed interface
        """Stop within ``timeout`` s; unacknowledged events stay in the spool for the next start."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wake.set()
            _done, pending = await asyncio.wait({task}, timeout=timeout / 2)
            if pending:
                task.cancel()
                await asyncio.wait({task}, timeout=timeout / 4)
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await asyncio.wait_for(producer.stop(), timeout=max(timeout / 4, 0.5))
            except TRANSIENT as exc:  # unacknowledged events stay in the spool: nothing is lost
                log.debug("Kafka producer did not close cleanly within the stop timeout: %r", exc)
        self._set_connected(False)

    async def _run(self) -> None:
        settings = self.settings
        backoff = Backoff(settings.retry_backoff_ms / 1000, settings.reconnect_backoff_max_s)
        gauges_at = -math.inf
        while not self._stopping:
            if time.monotonic() - gauges_at >= self.poll_interval_s:  # not per publish response
                gauges_at = time.monotonic()
                self.spool.refresh_gauges(time.time())  # the oldest age grows in an outage too
            try:
                await self._drain()
                if self._compaction_due():
                    await self._compact()
            except TRANSIENT as exc:
                if self._stopping:  # cut short by stop(): the events wait for the next start
                    log.debug("drain stopped: %r", exc)
                    break
                self._on_failure(exc)
                await self._sleep(backoff.next())
                continue
            backoff.reset()
            await self._sleep(self.poll_interval_s)

    def _compaction_due(self) -> bool:
        """Whether to delete the acknowledged rows now: `COMPACT_ROWS` of them, or any once a
        poll interval has passed since the last compaction. Not after every drain: a
        compaction costs ~80 µs a transaction plus ~0.8 µs a row, and the drain of a live
        agent is idle ten times a second."""
        dead = self.spool.acknowledged_rows()
        return dead >= COMPACT_ROWS or (
            dead > 0 and time.monotonic() - self._compacted_at >= self.poll_interval_s
        )

    async def _compact(self) -> None:
        """Delete the acknowledged rows (`Spool.compact`) while there is nothing to send, a
        chunk at a time, giving the loop back between chunks; new events come first."""
        self._compacted_at = time.monotonic()
        while not self._stopping and not self._wake.is_set():
            if not self.spool.compact():
                return
            await asyncio.sleep(0)  # scans and appends run between chunks

    async def _sleep(self, seconds: float) -> None:
        """Sleep until the tick, a wake() or stop(); whichever comes first."""
        # asyncio.timeout, not wait_for: no task per sleep (ten a second on a live agent), and
        # on Python 3.11 wait_for may swallow a cancellation that meets the wake
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def _drain(self) -> None:
        """Send until the spool is empty (or stop is asked); raise on the first failure.

        Pipelined `PIPELINE_DEPTH` batches deep: the next batches are read and sent while the
        broker is still acknowledging the oldest (the bare producer's pace, not a round trip
        and a spool write per batch; a second batch ahead covers the spool's checkpoints).
        A batch is removed from the spool only once it is acknowledged, in order; nothing is
        sent past a barrier row or a failed send before it is settled.
        """
        producer = await self._ensure_producer()
        chain = BatchChain(producer)
        flights: deque[_Flight] = deque()
        #: The last read found the end of the spool and no append (`wake`) came since: a
        #: read now would find nothing (two of the three reads per publishing interval did).
        at_end = False
        try:
            while not self._stopping:
                if self._wake.is_set():
                    self._wake.clear()
                    at_end = False
                while (not at_end and len(flights) < PIPELINE_DEPTH
                       and (not flights or flights[-1].open)):
                    after = flights[-1].last_id if flights else 0
                    peeked = self.spool.peek(self.batch_size, after=after)
                    rows = self._up_to_barrier(peeked)
                    at_end = (len(rows) == len(peeked) < self.batch_size
                              and not self._wake.is_set())
                    if not rows:
                        break
                    flights.append(await self._send_rows(producer, rows, chain))
                if not flights:
                    return
                try:
                    await self._settle_flight(producer, flights[0])
                except KeptBack:
                    # Behind a batch the broker refused (its rows were then settled one by
                    # one): kept back, never sent. The next drain, with a chain of its own,
                    # sends them again at once (no outage, no backoff).
                    self._wake.set()
                    return
                flights.popleft()
                self._on_success()
        finally:
            await chain.close()
            for flight in flights:  # sent but not settled: they stay in the spool, sent again
                flight.forget()

    def _up_to_barrier(self, rows: list[Row]) -> list[Row]:
        """The rows up to and including the first one to a barrier topic."""
        if self.barrier_topics:
            for i, row in enumerate(rows):
                if row[1] in self.barrier_topics:
                    return rows[: i + 1]
        return rows

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            kwargs = self._kwargs
            self._producer = await start_client(lambda: AIOKafkaProducer(**kwargs), self.settings)
            self._on_success()
            await ensure_topics(
                self.settings, [self.spool.topics.suspect, self.spool.topics.authorized],
                compacted=sorted(self.barrier_topics),
            )
        return self._producer

    async def _send_batch(self, producer: AIOKafkaProducer, rows: list[Row]) -> None:
        """Send all rows and settle them (`_send_rows`, then `_settle_flight`)."""
        chain = BatchChain(producer)
        try:
            await self._settle_flight(producer, await self._send_rows(producer, rows, chain))
        finally:
            await chain.close()

    async def _send_rows(
        self, producer: AIOKafkaProducer, rows: list[Row], chain: BatchChain
    ) -> _Flight:
        """Hand every row to the producer in record batches through the drain's ``chain``
        (pipelined: no wait for the broker), up to the first batch that could not be handed
        over; a row over ``max_request_size`` is refused here, alone, as ``producer.send``
        would refuse it."""
        flight = _Flight(rows, self.barrier_topics)
        outbox = Outbox(producer, self._partitions, chain)
        refused: dict[int, BaseException] = {}
        limit = self._kwargs.get("max_request_size", DEFAULT_MAX_REQUEST_SIZE)
        for i, (_row_id, topic, key, value) in enumerate(rows):
            error = _too_large(key, value, limit)
            if error is None:
                outbox.add(topic, key, value)
            else:
                refused[i] = error
        handed, flight.send_error = await outbox.send_each()
        flight.deliveries = list(dict.fromkeys(d for d in handed if d is not None))
        if not refused and flight.send_error is None:  # nearly always: every row handed over
            flight.sent = list(zip(rows, cast(list[asyncio.Future[Any]], handed), strict=True))
            flight.all_handed = True
            return flight
        deliveries = iter(handed)
        for i, row in enumerate(rows):
            outcome = refused.get(i) or next(deliveries)
            if outcome is None:  # its batch was not handed over: sent again after the error
                break
            flight.sent.append((row, outcome))
        return flight

    async def _settle_flight(self, producer: AIOKafkaProducer, flight: _Flight) -> None:
        """Await every delivery; in row order, ack what was delivered and quarantine what is
        refused for good, up to the first other failure, which is raised (the rows from there
        on are sent again)."""
        for delivery in flight.deliveries:  # most are done by the time the first is: no gather
            if not delivery.done():
                await asyncio.wait((delivery,))
            retrieve(delivery)  # a failure after the first one raised is read too
        if flight.all_handed and all(map(_delivered, flight.deliveries)):
            # nearly always: every row in a delivered record batch, none to look at one by one
            self._acked([row for row, _ in flight.sent])
            return
        acked: list[Row] = []
        try:
            await self._settle_all(producer, flight.sent, acked)
        finally:
            self._acked(acked)
        if flight.send_error is not None:
            raise flight.send_error

    def _acked(self, rows: list[Row]) -> None:
        """Remove from the spool the rows the broker acknowledged, and count them."""
        self.spool.ack([row[0] for row in rows])
        for topic, count in Counter(row[1] for row in rows).items():
            PUBLISHED.labels(topic=topic).inc(count)

    async def _settle_all(
        self,
        producer: AIOKafkaProducer,
        sent: list[tuple[Row, asyncio.Future[Any] | BaseException]],
        acked: list[Row],
    ) -> None:
        """Walk the outcomes in row order; raise the first failure that is not a refusal.

        A record refused alone with an error that has no name (`UNNAMED_REFUSALS`) is only
        suspected: it is quarantined once the next record gets through, and a next record
        refused the same way means the broker refuses everything (an outage: raised).
        """
        suspect: tuple[Row, BaseException] | None = None
        for row, outcome in sent:
            if suspect is None and _delivered(outcome):  # nearly every row: no coroutine
                acked.append(row)
                continue
            result = await self._settle(producer, row, outcome)
            if isinstance(result, BaseException):
                if suspect is not None or not isinstance(result, UNNAMED_REFUSALS):
                    raise result
                suspect = (row, result)
                continue
            if suspect is not None:
                self._quarantine(*suspect)
                suspect = None
            if result:
                acked.append(row)
        if suspect is not None:
            raise suspect[1]  # nothing after it to tell: tried again with the next batch

    async def _settle(
        self, producer: AIOKafkaProducer, row: Row, outcome: asyncio.Future[Any] | BaseException
    ) -> bool | BaseException:
        """True: delivered; False: quarantined; else the failure (an unnamed refusal of the
        record alone included: `_settle_all` decides on it)."""
        if isinstance(outcome, BaseException):  # refused by the client: no batch involved
            self._quarantine(row, outcome)
            return False
        failure = outcome.exception()
        if failure is None:
            return True
        if refusal(failure) is None:
            return failure
        # The broker refused a record batch: is it this record? Ask again with it alone.
        alone = await self._send_alone(producer, row)
        if alone is None:
            return True
        if refusal(alone) is None or isinstance(alone, UNNAMED_REFUSALS):
            return alone
        self._quarantine(row, alone)
        return False

    async def _send_alone(self, producer: AIOKafkaProducer, row: Row) -> BaseException | None:
        _row_id, topic, key, value = row
        try:
            await (await producer.send(topic, value, key=key))
        except TRANSIENT as exc:
            return exc
        return None

    def _quarantine(self, row: Row, exc: BaseException) -> None:
        row_id, topic, _key, value = row
        reason = refusal(exc) or f"{type(exc).__name__}: {exc}"
        seq = self.spool.quarantine(row_id, reason)
        log.error(
            "event seq %s to %s (%d bytes) is refused by the broker for good (%s): moved to the "
            "spool's quarantine, kept there (otwatch-agent spool show); the events behind it "
            "are sent on", seq, topic, len(value), reason,
        )

    def _on_success(self) -> None:
        self._outage.success()
        self.last_error = None
        self._set_connected(True)

    def _on_failure(self, exc: BaseException) -> None:
        message = str(exc) or type(exc).__name__
        self.last_error = message
        self._outage.failure(
            f"{message}; {self.spool.depth()} events wait in the spool and will be sent in order "
            "when it is back"
        )
        self._set_connected(False)

    def _set_connected(self, up: bool) -> None:
        self._connected = up
        BROKER_UP.set(1 if up else 0)


def _too_large(key: bytes, value: bytes, limit: int) -> MessageSizeTooLargeError | None:
    """aiokafka's own check in ``producer.send`` (same bound, same words): a record batch
    takes a record of any size, and only the broker would refuse it then."""
    if len(key) + len(value) < limit - 256:  # the estimate adds under 100 bytes: nearly all
        return None
    size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, [])
    if size <= limit:
        return None
    return MessageSizeTooLargeError(
        f"The message is {size} bytes when serialized which is larger than the maximum "
        "request size you have configured with the max_request_size configuration"
    )
