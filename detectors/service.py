"""The classifier service: consume suspect changes, classify, record, alert, then commit.

Exactly-once effect under at-least-once delivery: the records store dedupes on
``event_id`` inside the same transaction that opens or updates the record, and the Kafka
offset is committed only after that transaction has committed. A crash in between makes
Kafka deliver the batch again; the store recognises every event and changes nothing.
Alerts are sent before the offset commit, so they are at-least-once too; each carries a
stable ``alert_id`` (the event id) for the SIEM to dedupe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from agent.events import SCHEMA, SuspectChange
from agent.publisher import ensure_topics
from detectors.classification import Classification
from detectors.config import ClassifierConfig
from detectors.criteria import Criteria, classify
from detectors.errors import BadMessage
from detectors.records import RecordOutcome, RecordStore

log = logging.getLogger(__name__)

EVENTS = Counter("otwatch_classifier_events_total", "Events classified", ["classification"])
RULES = Counter("otwatch_classifier_rules_fired_total", "Rules fired", ["rule"])
DEAD = Counter("otwatch_classifier_dead_letters_total", "Messages sent to the DLQ", ["reason"])
RECORDS = Counter("otwatch_classifier_records_opened_total", "Master records opened")
LATENCY = Histogram(
    "otwatch_classifier_processing_seconds",
    "Detection (agent clock) to record committed",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def parse_event(value: bytes | None) -> SuspectChange:
    """One Kafka message value to an event, or `BadMessage` with a reason a person can act on."""
    if value is None:
        raise BadMessage("empty message (tombstone) on the events topic")
    try:
        head = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise BadMessage(f"not JSON: {exc}") from None
    if not isinstance(head, dict):
        raise BadMessage("not a JSON object")
    if head.get("schema") != SCHEMA:
        raise BadMessage(f"unknown schema {head.get('schema')!r}; this classifier reads {SCHEMA}")
    try:
        return SuspectChange.model_validate(head)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadMessage(f"invalid {SCHEMA} event: {where}: {first['msg']}") from None


def alert_for(event: SuspectChange, cls: Classification, outcome: RecordOutcome) -> dict[str, Any]:
    """A SIEM-friendly alert: what happened, where, the decision, and the linked ids."""
    return {
        "schema": "otwatch.alert/1",
        "alert_id": event.event_id,
        "time": event.detected_at.isoformat(),
        "classification": cls.kind.value,
        "severity": cls.severity.value,
        "rules_fired": list(cls.rules_fired),
        "criteria_version": cls.criteria_version,
        "attack_techniques": list(cls.attack_techniques),
        "master_record": outcome.record_id,
        "security_ticket": outcome.ticket_id,
        "new_record": outcome.created,
        "site": event.site,
        "line": event.line,
        "controller": event.controller.id,
        "controller_validated": event.controller.validated,
        "tag": event.tag.name,
        "change_kind": event.change_kind.value,
        "verdict": event.verdict.value,
        "old_value": event.old_value,
        "new_value": event.new_value,
        "actor": event.actor,
        "agent_id": event.agent_id,
        "description": cls.description,
    }


class _RebalanceLog(ConsumerRebalanceListener):  # type: ignore[misc]
    """Offsets are committed after every batch, so a revocation has nothing pending."""

    async def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("partitions revoked: %s", sorted(f"{tp.topic}/{tp.partition}" for tp in revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("partitions assigned: %s", sorted(f"{tp.topic}/{tp.partition}" for tp in assigned))


class Classifier:
    """One classifier process in the consumer group; `await run()` until `stop()`."""

    def __init__(self, config: ClassifierConfig, criteria: Criteria, store: RecordStore) -> None:
        self.config = config
        self.criteria = criteria
        self.store = store
        self._stop = asyncio.Event()
        self.processed = 0

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        kafka = self.config.kafka
        consumer = AIOKafkaConsumer(
            group_id=self.config.classifier.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **kafka.consumer_kwargs(),
        )
        producer = AIOKafkaProducer(**kafka.producer_kwargs())
        await _start_with_retry(producer.start, "producer", self._stop)
        topics = self.config.topics
        await ensure_topics(kafka, [topics.suspect, topics.alerts, topics.records, topics.dlq])
        await _start_with_retry(consumer.start, "consumer", self._stop)
        consumer.subscribe([self.config.topics.suspect], listener=_RebalanceLog())
        try:
            while not self._stop.is_set():
                batches = await consumer.getmany(
                    timeout_ms=500, max_records=self.config.classifier.batch_size
                )
                for tp, messages in batches.items():
                    await self._handle(tp, messages, producer)
                    await consumer.commit({tp: messages[-1].offset + 1})
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 10)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 10)

    async def _handle(self, tp: TopicPartition, messages: Sequence[Any], producer: AIOKafkaProducer) -> None:
        items: list[tuple[SuspectChange, Classification]] = []
        for msg in messages:
            try:
                event = parse_event(msg.value)
            except BadMessage as exc:
                await self._dead_letter(producer, msg, str(exc))
                continue
            cls = classify(event, self.criteria)
            items.append((event, cls))
            EVENTS.labels(cls.kind.value).inc()
            for rule in cls.rules_fired:
                RULES.labels(rule).inc()
        if not items:
            return
        outcomes = self.store.record_events(
            items,
            now=datetime.now(UTC),
            correlation_window_s=self.criteria.correlation.window_s,
        )
        await self._publish(producer, items, outcomes)
        self.processed += len(items)

    async def _publish(
        self,
        producer: AIOKafkaProducer,
        items: list[tuple[SuspectChange, Classification]],
        outcomes: list[RecordOutcome],
    ) -> None:
        now = time.time()
        futures = []
        for (event, cls), outcome in zip(items, outcomes, strict=True):
            if outcome.record_id is None:
                continue
            if outcome.created:
                RECORDS.inc()
                log.warning(
                    "%s record %s opened with ticket %s: %s",
                    cls.kind.value, outcome.record_id, outcome.ticket_id, cls.description,
                )
                futures.append(await producer.send(
                    self.config.topics.records,
                    orjson.dumps({"schema": "otwatch.record-event/1", "type": "opened",
                                  "record_id": outcome.record_id, "ticket_id": outcome.ticket_id,
                                  "classification": cls.kind.value, "event_id": event.event_id}),
                    key=outcome.record_id.encode(),
                ))
            if not outcome.duplicate:
                LATENCY.observe(max(0.0, now - event.detected_at.timestamp()))
            futures.append(await producer.send(
                self.config.topics.alerts,
                orjson.dumps(alert_for(event, cls, outcome)),
                key=event.kafka_key(),
            ))
        if futures:
            await asyncio.gather(*futures)

    async def _dead_letter(self, producer: AIOKafkaProducer, msg: Any, reason: str) -> None:
        DEAD.labels(reason.split(":")[0][:40]).inc()
        log.warning("dead letter %s/%d@%d: %s", msg.topic, msg.partition, msg.offset, reason)
        value = msg.value.decode("utf-8", "replace") if msg.value is not None else None
        body = {"reason": reason, "topic": msg.topic, "partition": msg.partition,
                "offset": msg.offset, "key": msg.key.decode("utf-8", "replace") if msg.key else None,
                "value": value, "at": datetime.now(UTC).isoformat()}
        await producer.send_and_wait(self.config.topics.dlq, orjson.dumps(body), key=msg.key)


async def _start_with_retry(start: Any, what: str, stop: asyncio.Event) -> None:
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
