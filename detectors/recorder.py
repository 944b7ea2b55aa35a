"""Classify, record, publish: what the classifier does with each batch of events it may take.

`Recorder.record` classifies every event against the joint criteria (in the context the burst
correlator or the integrity reader gave it), records the batch in one records-store transaction
(deduplicated on ``event_id``; `Recorder.store`), then sends each recorded event's record
lifecycle event and alert as a few record batches (`Recorder.publish`, `Outbox`). It returns
the wait for the broker's acknowledgements: the caller commits the batch's offsets only after
both. The group consumer calls the two halves apart, to start the next batch's transaction
before it publishes this one (`detectors.suspects`).

A batch is published while the ones before it are still unacknowledged, so every publish goes
through one `BatchChain`: a partition's record batch is handed to the producer only once the one
before it there was delivered. With idempotence off (Tansu) aiokafka fails a batch that waited
``request_timeout_ms`` instead of retrying it; without the chain a later batch for the same key
could then be delivered first, and the resend (from the committed offsets, by the next run)
land after it. Behind a failed batch the chain fails each later one of its partition
(`KeptBack`), so nothing of this Recorder overtakes the resend; a failure ends the run (its
offsets are never committed), and the next run's Recorder starts with a chain of its own.
`close` the Recorder when the run stops.

Example::

    >>> acked = await recorder.record(placed, now)   # transaction committed, messages sent
    >>> await acked                                  # ... and acknowledged
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from agent.contract import SuspectChange
from agent.kafka.batching import BatchChain, Outbox, PartitionCache
from agent.kafka.settings import TopicNames
from detectors import alerts, health
from detectors.alert_formats import Encoder
from detectors.classification import Classification
from detectors.correlate import EventContext
from detectors.criteria import Criteria, classify_placed
from detectors.messages import DeadLetters
from detectors.records import RecordOutcome, RecordsError, RecordStore
from detectors.store_retry import RetryingStore, one_line

log = logging.getLogger(__name__)

#: Where a consumed event came from, and its message value (the evidence keeps those bytes).
Token = tuple[TopicPartition, int, bytes]
#: An event ready to be classified, its context, and its token (None: made by the classifier).
Placed = tuple[SuspectChange, EventContext, Token | None]
Item = tuple[SuspectChange, Classification]


@dataclass(frozen=True, slots=True)
class Stored:
    """A batch whose records transaction committed: what it recorded, and how."""

    items: list[Item]
    outcomes: list[RecordOutcome]


@dataclass(frozen=True, slots=True)
class Refused:
    """Where a message the records database refused was read (for its dead letter)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


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
        dead_letters: DeadLetters | None = None,
        alert_encoder: Encoder = alerts.alert_json,
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
        #: Where a message goes that the records database refuses (None: logged only).
        self._dead_letters = dead_letters
        #: The alert format of ``alerts.format`` (`detectors.alert_formats.encoder_for`).
        self._encode_alert = alert_encoder
        self._partitions = PartitionCache()
        #: Every publish's record batches, one at a time per partition (kept across failures:
        #: a batch sent after a failed one must not overtake its resend by the next run).
        self._chain = BatchChain(producer)

    async def close(self) -> None:
        """Hand nothing more to the producer: the batches kept back are abandoned."""
        await self._chain.close()

    async def record(self, placed: Sequence[Placed], now: datetime) -> Awaitable[Any]:
        """Classify, record in one transaction, send; returns the wait for the broker's acks."""
        return await self.publish(await self.store(placed, now))

    async def store(self, placed: Sequence[Placed], now: datetime) -> Stored:
        """Classify and record in one transaction (`publish` sends what it recorded). The
        group consumer starts the next batch's transaction before it publishes this one."""
        if not placed:
            return Stored([], [])
        items = classify_placed(placed, self._criteria)
        _count_classified(items)
        items, outcomes = await self._record_in_store(placed, items, now)
        if self._after_record is not None:
            self._after_record()
        return Stored(items, outcomes)

    async def publish(self, stored: Stored) -> Awaitable[Any]:
        """Send a recorded batch's record events and alerts; returns the wait for the acks."""
        items, outcomes = stored.items, stored.outcomes
        if not items:
            return asyncio.gather()  # already done: nothing to wait for
        #: Events per detection instant (events of one poll share it): each instant's latency
        #: is worked out once, and the histogram observed once per batch (`BatchedHistogram`).
        detected: dict[datetime, int] = {}
        acked, duplicates = await self._publish(items, outcomes, detected)
        done = self._clock().timestamp()
        if duplicates:
            health.DUPLICATES.inc(duplicates)
            self._status.duplicates += duplicates
        latencies: dict[float, int] = {}
        for at, count in detected.items():
            latency = max(0.0, done - at.timestamp())
            latencies[latency] = latencies.get(latency, 0) + count
        health.LATENCY.observe_counts(latencies)
        self._status.processed += len(items)
        self._status.write()
        return acked

    async def _record_in_store(
        self, placed: Sequence[Placed], items: list[Item], now: datetime
    ) -> tuple[list[Item], list[RecordOutcome]]:
        """The batch in one transaction; what was recorded, and how.

        While the database is away this waits and retries (`RetryingStore.call`): nothing is
        committed meanwhile. If the database refuses the batch (it answers, but will not take
        it: a value it cannot hold), each event is tried alone, and the ones it refuses go to
        the dead-letter topic with why: one event never holds back the others.
        """
        window_s = self._criteria.correlation.window_s
        raw = _message_values(placed)
        burst_s = self._criteria.burst.window_s
        try:
            return items, await self._store.call(
                lambda store: store.record_events(
                    items, now=now, correlation_window_s=window_s, raw=raw,
                    burst_window_s=burst_s,
                )
            )
        except RecordsError as exc:  # (unavailable is retried inside `call`, never here)
            log.error("the records database refused a batch of %d events (%s); recording "
                      "them one at a time", len(items), one_line(exc))
        kept: list[Item] = []
        outcomes: list[RecordOutcome] = []
        refused: list[tuple[Placed, str]] = []
        for item, one in zip(items, placed, strict=True):
            alone = _alone(item, one, now, window_s, burst_s)
            try:
                outcomes += await self._store.call(alone)
            except RecordsError as exc:
                refused.append((one, f"records database refused it: {one_line(exc)}"))
                continue
            kept.append(item)
        await self._refuse(refused)
        return kept, outcomes

    async def _refuse(self, refused: list[tuple[Placed, str]]) -> None:
        letters = []
        for (event, _, token), reason in refused:
            if token is None or self._dead_letters is None:
                log.error("event %s not recorded: %s", event.event_id, reason)
                continue
            tp, offset, value = token
            letters.append((Refused(tp.topic, tp.partition, offset, event.kafka_key(), value),
                            reason))
        if self._dead_letters is not None:
            await self._dead_letters.send(letters)

    async def _publish(
        self, items: list[Item], outcomes: list[RecordOutcome], detected: dict[datetime, int]
    ) -> tuple[Awaitable[Any], int]:
        """Send each recorded event's record event and alert; returns the wait for the acks
        and how many were duplicates, and counts the others per detection instant in
        ``detected`` (in the same pass over the batch)."""
        at, encode_alert = self._clock().isoformat(), self._encode_alert
        record_event_json = alerts.record_event_json  # (once, not per event)
        #: Each topic's (key, value) messages, handed to the `Outbox` as two runs: a list
        #: append per message instead of a method call (the topics' order is per partition).
        records: list[tuple[bytes, bytes]] = []
        sent_alerts: list[tuple[bytes, bytes]] = []
        add_record, add_alert = records.append, sent_alerts.append
        openers = await self._openers([o for o in outcomes if o.duplicate and o.record_id])
        duplicates = 0
        for (event, cls), outcome in zip(items, outcomes, strict=True):
            if outcome.duplicate:
                duplicates += 1
            else:
                detected_at = event.detected_at
                detected[detected_at] = detected.get(detected_at, 0) + 1
            record_id = outcome.record_id
            if record_id is None:
                continue
            created = outcome.created
            if created:
                health.RECORDS.inc()
                log.warning("%s record %s opened with ticket %s: %s", cls.kind.value,
                            record_id, outcome.ticket_id, cls.description)
            opened = created or (bool(openers) and openers.get(record_id) == event.event_id)
            add_record((record_id.encode(),
                        record_event_json(event, cls, outcome, at, opened=opened)))
            add_alert((event.kafka_key(), encode_alert(event, cls, outcome)))
        outbox = Outbox(self._producer, self._partitions, self._chain)
        outbox.add_all(self._topics.records, records)
        outbox.add_all(self._topics.alerts, sent_alerts)
        return await outbox.send(), duplicates

    async def _openers(self, duplicates: list[RecordOutcome]) -> dict[str, str]:
        """For redelivered events: which event opened each record (to resend ``opened``)."""
        ids = {o.record_id for o in duplicates if o.record_id is not None}
        if not ids:
            return {}
        return await self._store.call(lambda store: _first_evidence(store, ids))


def _alone(
    item: Item, placed: Placed, now: datetime, window_s: float, burst_s: float
) -> Callable[[RecordStore], list[RecordOutcome]]:
    """Recording one event in a transaction of its own (its message kept, if it has one)."""
    raw = [placed[2][2]] if placed[2] is not None else None
    return lambda store: store.record_events(
        [item], now=now, correlation_window_s=window_s, raw=raw, burst_window_s=burst_s
    )


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
    """Metrics per batch, not per event: a labelled counter costs a lock and a lookup. The
    events are counted per decision (kind and rules fired) first: few distinct ones occur."""
    decisions = Counter((cls.kind, cls.rules_fired) for _, cls in items)
    kinds: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    for (kind, fired), count in decisions.items():
        kinds[kind.value] += count
        for rule in fired:
            rules[rule] += count
    for kind_value, count in kinds.items():
        health.EVENTS.labels(kind_value).inc(count)
    for rule, count in rules.items():
        health.RULES.labels(rule).inc(count)
