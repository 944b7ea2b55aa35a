"""The classifier service: consume suspect changes, correlate, classify, record, alert, commit.

Exactly-once effect under at-least-once delivery: the records store dedupes on ``event_id``
inside the same transaction that opens or updates the record, and a Kafka offset is committed
only after that transaction has committed. A crash in between makes Kafka deliver the batch
again; the store recognises every event and changes nothing. Alerts and record events are sent
before the commit, so they are at-least-once too; each carries the stable event id to dedupe on.

Two readers, each owned by one task:

- the **group consumer** (``classifier.group_id``) reads the suspect topic; its partitions are
  spread across the classifier processes. Events of a possible burst are held back by the
  `BurstCorrelator` (their offsets stay uncommitted) until the burst is decided.
- the **agent watch** (no group: every process reads every partition) reads both change topics
  and the heartbeats, for the integrity findings of `detectors.integrity`. Those are recorded
  with deterministic event ids, so several processes finding the same thing write one record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.partitioner import DefaultPartitioner

from agent.cancel import raise_if_cancel_swallowed
from agent.events import SuspectChange
from agent.gc_tuning import tune_for_throughput
from agent.publisher import demote_kafka_client_logs, ensure_topics
from detectors import alerts, health
from detectors.classification import Classification
from detectors.config import ClassifierConfig
from detectors.correlate import BurstCorrelator, EventContext
from detectors.criteria import Criteria, classify
from detectors.errors import BadMessage
from detectors.integrity import AgentWatch
from detectors.records import RecordOutcome, RecordStore

log = logging.getLogger(__name__)

#: Test-only: exit hard right after the first batch is recorded, before its offsets commit.
CRASH_AFTER_RECORD_ENV = "OTWATCH_TEST_CRASH_AFTER_RECORD"

#: Where a consumed event came from, and its message value (the evidence keeps those bytes).
Token = tuple[TopicPartition, int, bytes]
Placed = tuple[SuspectChange, EventContext, Token | None]

# Kept importable from here: older callers import these from the service.
parse_event = alerts.parse_event
alert_for = alerts.alert_for


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, classifier: Classifier) -> None:
        self.classifier = classifier

    async def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("partitions revoked: %s", sorted(f"{tp.topic}/{tp.partition}" for tp in revoked))
        self.classifier.forget(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("partitions assigned: %s", sorted(f"{tp.topic}/{tp.partition}" for tp in assigned))
        self.classifier.status.set_assigned((tp.topic, tp.partition) for tp in assigned)


class Classifier:
    """One classifier process in the consumer group; `await run()` until `stop()`."""

    def __init__(
        self, config: ClassifierConfig, criteria: Criteria, store: RecordStore,
        *, clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.config = config
        self.criteria = criteria
        self.store = store
        self.clock = clock
        self.status = health.Status(config.classifier.status_file)
        self.bursts: BurstCorrelator[Token] = BurstCorrelator(criteria.burst)
        integrity = config.integrity
        self.agents = AgentWatch(
            silence_after_s=integrity.silence_after_s, grace_s=integrity.seq_gap_grace_s
        )
        self._partitions = _PartitionCache()
        self._unacked: _Unacked | None = None
        self._consumed: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._crash_armed = os.environ.get(CRASH_AFTER_RECORD_ENV) == "1"
        self._stop = asyncio.Event()

    @property
    def processed(self) -> int:
        return self.status.processed

    def stop(self) -> None:
        self._stop.set()

    def forget(self, revoked: set[TopicPartition]) -> None:
        """A revoked partition's held events and positions belong to its next owner now."""
        self.bursts.drop(lambda token: token[0] in revoked)
        for tp in revoked:
            self._consumed.pop(tp, None)
            self._committed.pop(tp, None)

    async def run(self) -> None:
        tune_for_throughput()
        kafka, topics = self.config.kafka, self.config.topics
        demote_kafka_client_logs()
        producer = AIOKafkaProducer(**kafka.producer_kwargs())
        await _start_with_retry(producer.start, "producer", self._stop)
        try:
            await ensure_topics(kafka, [
                topics.suspect, topics.authorized, topics.heartbeat, topics.alerts,
                topics.records, topics.dlq,
            ])
            tasks = [asyncio.create_task(self._consume(producer), name="otwatch-classify")]
            if self.config.integrity.enabled:
                tasks.append(asyncio.create_task(self._watch(producer), name="otwatch-watch"))
            await self._supervise(tasks)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 10)

    async def _supervise(self, tasks: list[asyncio.Task[None]]) -> None:
        """Run until stop() or until a task fails; then cancel and await the others."""
        stopper = asyncio.create_task(self._stop.wait(), name="otwatch-stop")
        try:
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in [*tasks, stopper]:
                task.cancel()
            await asyncio.wait([*tasks, stopper], timeout=15)
        for task in done:
            if task is not stopper and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _consume(self, producer: AIOKafkaProducer) -> None:
        settings = self.config
        consumer = AIOKafkaConsumer(
            group_id=settings.classifier.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.classifier.session_timeout_ms,
            heartbeat_interval_ms=settings.classifier.session_timeout_ms // 3,
            **settings.kafka.consumer_kwargs(),
        )
        await _start_with_retry(consumer.start, "consumer", self._stop)
        consumer.subscribe([settings.topics.suspect], listener=_Rebalance(self))
        try:
            while True:
                raise_if_cancel_swallowed()
                batches = await consumer.getmany(
                    timeout_ms=500, max_records=settings.classifier.batch_size
                )
                await self._classify_batch(consumer, producer, batches)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._commit_last(consumer), 10)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 10)

    async def _commit_last(self, consumer: AIOKafkaConsumer) -> None:
        """On stop: commit the last recorded batch if its messages were acked (else the next
        owner reads it again and the store recognises it)."""
        last, self._unacked = self._unacked, None
        if last is not None:
            await self._commit(consumer, last)

    async def _classify_batch(
        self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
        batches: dict[TopicPartition, list[Any]],
    ) -> None:
        """Record this batch, then commit the previous one once its messages are acked.

        Waiting for the broker's acks before reading on idled the classifier for a round
        trip per batch; now batch N's acks arrive while batch N+1 is read and recorded. The
        order per batch still holds: record transaction committed, alerts and record events
        acknowledged, then its offsets committed.
        """
        now = self.clock()
        placed: list[Placed] = []
        for tp, messages in batches.items():
            for msg in messages:
                try:
                    event = alerts.parse_event(msg.value)
                except BadMessage as exc:
                    await self._dead_letter(producer, msg, str(exc))
                    continue
                placed += self.bursts.offer(event, (tp, msg.offset, msg.value), now=now)
            if messages:
                self._consumed[tp] = messages[-1].offset + 1
        placed += self.bursts.due(now=now)
        acked = await self._record(producer, placed, now)
        previous, self._unacked = self._unacked, _Unacked(acked, self._commit_targets())
        if previous is not None:
            await self._commit(consumer, previous)
        health.HELD.set(len(self.bursts.held_tokens()))
        health.set_lag(
            (tp.topic, tp.partition, (consumer.highwater(tp) or pos) - pos)
            for tp, pos in self._consumed.items()
        )

    async def _record(
        self, producer: AIOKafkaProducer, placed: Sequence[Placed], now: datetime
    ) -> Awaitable[Any]:
        """Classify, record in one transaction, send; returns the wait for the broker's acks."""
        if not placed:
            return asyncio.gather()  # already done: nothing to wait for
        items = [(ev, classify(ev, self.criteria, ctx)) for ev, ctx, _ in placed]
        _count_classified(items)
        outcomes = self.store.record_events(
            items, now=now, correlation_window_s=self.criteria.correlation.window_s,
            raw=_message_values(placed),
        )
        if self._crash_armed:
            log.error("%s=1: exiting before the offset commit (test hook)", CRASH_AFTER_RECORD_ENV)
            os._exit(137)
        acked = await self._publish(producer, items, outcomes)
        done = self.clock().timestamp()
        for (event, _), outcome in zip(items, outcomes, strict=True):
            if outcome.duplicate:
                health.DUPLICATES.inc()
                self.status.duplicates += 1
            else:
                health.LATENCY.observe(max(0.0, done - event.detected_at.timestamp()))
        self.status.processed += len(items)
        self.status.write()
        return acked

    def _commit_targets(self) -> dict[TopicPartition, int]:
        """Per partition: its first held event, or everything it consumed."""
        first_held: dict[TopicPartition, int] = {}
        for tp, offset, _ in self.bursts.held_tokens():
            first_held[tp] = min(offset, first_held.get(tp, offset))
        return {tp: first_held.get(tp, consumed) for tp, consumed in self._consumed.items()}

    async def _commit(self, consumer: AIOKafkaConsumer, batch: _Unacked) -> None:
        """Once a recorded batch's messages are acked, commit its offsets (those still ours)."""
        await batch.acked
        assigned = consumer.assignment()
        offsets = {
            tp: target for tp, target in batch.targets.items()
            if tp in assigned and self._committed.get(tp) != target
        }
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # A rebalance took the partitions away: the next owner reads from the last commit
            # and the store recognises what was already recorded.
            log.warning("offset commit refused (%s); the next owner redelivers", exc)
            return
        self._committed.update(offsets)

    async def _publish(
        self, producer: AIOKafkaProducer, items: list[tuple[SuspectChange, Classification]],
        outcomes: list[RecordOutcome],
    ) -> Awaitable[Any]:
        """Send each recorded event's record event and alert; returns the wait for the acks."""
        topics, at = self.config.topics, self.clock().isoformat()
        outbox = _Outbox(producer, self._partitions)
        openers = self._openers([o for o in outcomes if o.duplicate and o.record_id])
        for (event, cls), outcome in zip(items, outcomes, strict=True):
            if outcome.record_id is None:
                continue
            if outcome.created:
                health.RECORDS.inc()
                log.warning("%s record %s opened with ticket %s: %s", cls.kind.value,
                            outcome.record_id, outcome.ticket_id, cls.description)
            opened = outcome.created or openers.get(outcome.record_id) == event.event_id
            body = alerts.record_event_json(event, cls, outcome, at, opened=opened)
            outbox.add(topics.records, outcome.record_id.encode(), body)
            outbox.add(topics.alerts, event.kafka_key(), alerts.alert_json(event, cls, outcome))
        return await outbox.send()

    def _openers(self, duplicates: list[RecordOutcome]) -> dict[str, str]:
        """For redelivered events: which event opened each record (to resend ``opened``)."""
        found: dict[str, str] = {}
        for record_id in {o.record_id for o in duplicates if o.record_id is not None}:
            evidence = self.store.get_record(record_id).evidence
            if evidence:
                found[record_id] = min(evidence, key=lambda e: e.attached_at).event_id
        return found

    async def _dead_letter(self, producer: AIOKafkaProducer, msg: Any, reason: str) -> None:
        health.DEAD.labels(health.dead_letter_reason(reason)).inc()
        self.status.dead_letters += 1
        log.warning("dead letter %s/%d@%d: %s", msg.topic, msg.partition, msg.offset, reason)
        body = alerts.dead_letter(
            reason=reason, topic=msg.topic, partition=msg.partition, offset=msg.offset,
            key=msg.key, value=msg.value, at=self.clock(),
        )
        await producer.send_and_wait(self.config.topics.dlq, orjson.dumps(body), key=msg.key)

    async def _watch(self, producer: AIOKafkaProducer) -> None:
        """Read every partition of both change topics and the heartbeats; find what is due."""
        topics, integrity = self.config.topics, self.config.integrity
        watch = AIOKafkaConsumer(
            group_id=None, enable_auto_commit=False, auto_offset_reset=integrity.start_from,
            **self.config.kafka.consumer_kwargs(),
        )
        await _start_with_retry(watch.start, "agent watch", self._stop)
        watch.subscribe([topics.suspect, topics.authorized, topics.heartbeat])
        last_check: datetime | None = None
        try:
            while True:
                raise_if_cancel_swallowed()
                batches = await watch.getmany(timeout_ms=250, max_records=5_000)
                now = self.clock()
                for tp, messages in batches.items():
                    self._saw(tp.topic == topics.heartbeat, messages, now)
                if last_check is None or (now - last_check).total_seconds() >= (
                    integrity.check_interval_s
                ):
                    last_check = now
                    caught_up = await _caught_up(watch)
                    self._set_watching(caught_up)
                    await self._integrity(producer, now, caught_up)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(watch.stop(), 10)

    def _saw(self, heartbeats: bool, messages: list[Any], now: datetime) -> None:
        for msg in messages:
            try:
                if heartbeats:
                    self.agents.saw_heartbeat(alerts.parse_heartbeat(msg.value))
                else:
                    self.agents.saw_event(alerts.parse_event(msg.value), now=now)
            except BadMessage as exc:  # the group consumer dead-letters bad events, once
                log.debug("agent watch skips %s/%d@%d: %s", msg.topic, msg.partition,
                          msg.offset, exc)

    def _set_watching(self, caught_up: bool) -> None:
        if caught_up != self.status.watching:
            self.status.watching = caught_up
        self.status.write()

    async def _integrity(self, producer: AIOKafkaProducer, now: datetime, caught_up: bool) -> None:
        findings = self.agents.findings(now=now, caught_up=caught_up)
        for finding in findings:
            kind = finding.context.integrity
            health.FINDINGS.labels(kind.value if kind else "unknown").inc()
            log.warning("integrity finding %s: %s", finding.event.event_id,
                        finding.event.verdict_reason)
        self.status.findings += len(findings)
        await (await self._record(producer, [(f.event, f.context, None) for f in findings], now))


@dataclass(frozen=True)
class _Unacked:
    """A recorded batch whose messages the broker may not have acknowledged yet."""

    acked: Awaitable[Any]
    targets: dict[TopicPartition, int]


def _message_values(placed: Sequence[Placed]) -> list[bytes] | None:
    """The message value of every event, when all came from Kafka: the evidence then keeps
    and hashes the bytes as received, and the store need not re-serialise each event."""
    values = [token[2] for _, _, token in placed if token is not None]
    return values if len(values) == len(placed) else None


def _count_classified(items: Sequence[tuple[SuspectChange, Classification]]) -> None:
    """Metrics per batch, not per event: a labelled counter costs a lock and a lookup."""
    kinds = Counter(cls.kind.value for _, cls in items)
    rules = Counter(rule for _, cls in items for rule in cls.rules_fired)
    for kind, count in kinds.items():
        health.EVENTS.labels(kind).inc(count)
    for rule, count in rules.items():
        health.RULES.labels(rule).inc(count)


class _Outbox:
    """One batch's outgoing messages, appended straight into per-partition record batches.

    ``producer.send`` costs a coroutine, a partitioner call (pure-Python murmur2) and a future
    per message: a quarter of the classifier's time. Here a batch of messages costs one
    ``send_batch`` per partition, and each key's partition comes from `_PartitionCache`.
    """

    def __init__(self, producer: AIOKafkaProducer, partitions: _PartitionCache) -> None:
        self._producer = producer
        self._partitions = partitions
        self._messages: list[tuple[str, bytes, bytes]] = []

    def add(self, topic: str, key: bytes, value: bytes) -> None:
        self._messages.append((topic, key, value))

    async def send(self) -> asyncio.Future[Any]:
        """Send every message, in order per partition; returns the wait for all the acks."""
        for topic in {topic for topic, _, _ in self._messages}:
            await self._partitions.refresh(self._producer, topic)
        batches: dict[tuple[str, int], Any] = {}
        sent: list[Awaitable[Any]] = []
        for topic, key, value in self._messages:
            target = (topic, self._partitions.partition(topic, key))
            batch = batches.get(target)
            if batch is not None and batch.append(key=key, value=value, timestamp=None) is not None:
                continue
            if batch is not None:  # full: send it and start the next one
                sent.append(await self._producer.send_batch(batch, topic, partition=target[1]))
            batch = batches[target] = self._producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise KafkaError(f"a {len(value)}-byte message to {topic} exceeds a batch")
        for (topic, partition), batch in batches.items():
            sent.append(await self._producer.send_batch(batch, topic, partition=partition))
        return asyncio.gather(*sent)


class _PartitionCache:
    """Key → partition per topic, by aiokafka's `DefaultPartitioner` (the one ``send`` uses;
    the settings configure no other), so messages land where ``send`` would put them."""

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

    def partition(self, topic: str, key: bytes) -> int:
        partitions, by_key = self._known[topic]
        found = by_key.get(key)
        if found is None:
            found = by_key[key] = self._partitioner(key, partitions, partitions)
        return found


async def _caught_up(consumer: AIOKafkaConsumer) -> bool:
    """True when every assigned partition has been read up to its highwater."""
    assigned = consumer.assignment()
    if not assigned:
        return False
    for tp in assigned:
        highwater = consumer.highwater(tp)
        if highwater is None:
            return False
        try:
            position = await asyncio.wait_for(consumer.position(tp), 1.0)
        except (TimeoutError, KafkaError, IllegalStateError):
            return False
        if position < highwater:
            return False
    return True


async def _start_with_retry(
    start: Callable[[], Awaitable[None]], what: str, stop: asyncio.Event
) -> None:
    """Start a Kafka client, retrying quietly while the broker is not reachable yet."""
    delay, logged = 0.5, False
    while True:
        try:
            await start()
            return
        except KafkaError as exc:
            if stop.is_set():
                raise
            if not logged:
                log.error("Kafka %s cannot start (%s); retrying", what, exc)
                logged = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
