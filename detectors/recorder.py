"""Classify, record, publish: what the classifier does with each batch of events it may take.

`Recorder.record` classifies every event against the joint criteria (in the context the burst
correlator or the integrity reader gave it), records the batch in one records-store transaction
(deduplicated on ``event_id``), then sends each recorded event's record lifecycle event and
alert as a few record batches (`agent.kafka.batching.Outbox`). It returns the wait for the
broker's acknowledgements: the caller commits the batch's offsets only after both.

Example::

    >>> acked = await recorder.record(placed, now)   # transaction committed, messages sent
    >>> await acked                                  # ... and acknowledged
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from agent.contract import SuspectChange
from agent.kafka.batching import Outbox, PartitionCache
from agent.kafka.settings import TopicNames
from detectors import alerts, health
from detectors.classification import Classification
from detectors.correlate import EventContext
from detectors.criteria import Criteria, classify
from detectors.records import RecordOutcome, RecordStore
from detectors.store_retry import RetryingStore

log = logging.getLogger(__name__)

#: Where a consumed event came from, and its message value (the evidence keeps those bytes).
Token = tuple[TopicPartition, int, bytes]
#: An event ready to be classified, its context, and its token (None: made by the classifier).
Placed = tuple[SuspectChange, EventContext, Token | None]


class Recorder:
    """Classifies, records and publishes batches for one classifier process."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        topics: TopicNames,
        criteria: Criteria,
        store: RetryingStore,
        status: health.Status,
        clock: Callable[[], datetime],
        *,
        after_record: Callable[[], None] | None = None,
    ) -> None:
        self._producer = producer
        self._topics = topics
        self._criteria = criteria
        self._store = store
        self._status = status
        self._clock = clock
        #: Called right after each records transaction, before anything is sent (tests use it
        #: to end the process there: a crash between record and offset commit).
        self._after_record = after_record
        self._partitions = PartitionCache()

    async def record(self, placed: Sequence[Placed], now: datetime) -> Awaitable[Any]:
        """Classify, record in one transaction, send; returns the wait for the broker's acks."""
        if not placed:
            return asyncio.gather()  # already done: nothing to wait for
        items = [(ev, classify(ev, self._criteria, ctx)) for ev, ctx, _ in placed]
        _count_classified(items)
        raw, window_s = _message_values(placed), self._criteria.correlation.window_s
        # While the database is away this waits (and retries): nothing is committed meanwhile.
        outcomes = await self._store.call(
            lambda store: store.record_events(
                items, now=now, correlation_window_s=window_s, raw=raw
            )
        )
        if self._after_record is not None:
            self._after_record()
        acked = await self._publish(items, outcomes)
        done = self._clock().timestamp()
        for (event, _), outcome in zip(items, outcomes, strict=True):
            if outcome.duplicate:
                health.DUPLICATES.inc()
                self._status.duplicates += 1
            else:
                health.LATENCY.observe(max(0.0, done - event.detected_at.timestamp()))
        self._status.processed += len(items)
        self._status.write()
        return acked

    async def _publish(
        self, items: list[tuple[SuspectChange, Classification]], outcomes: list[RecordOutcome],
    ) -> Awaitable[Any]:
        """Send each recorded event's record event and alert; returns the wait for the acks."""
        topics, at = self._topics, self._clock().isoformat()
        outbox = Outbox(self._producer, self._partitions)
        openers = await self._openers([o for o in outcomes if o.duplicate and o.record_id])
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

    async def _openers(self, duplicates: list[RecordOutcome]) -> dict[str, str]:
        """For redelivered events: which event opened each record (to resend ``opened``)."""
        ids = {o.record_id for o in duplicates if o.record_id is not None}
        if not ids:
            return {}
        return await self._store.call(lambda store: _first_evidence(store, ids))


def _first_evidence(store: RecordStore, record_ids: set[str]) -> dict[str, str]:
    """Record id → the event id of its first evidence (the event that opened it)."""
    found: dict[str, str] = {}
    for record_id in record_ids:
        evidence = store.get_record(record_id).evidence
        if evidence:
            found[record_id] = min(evidence, key=lambda e: e.attached_at).event_id
    return found


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
