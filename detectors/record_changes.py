"""Every change to a master record as an event on ``otwatch.records`` (schema
``otwatch.record-change/1``), so that a QMS, a data lake or a SIEM follows records without
polling: a trail relay (`detectors.records.TrailRelay`, cursor ``relay_cursor`` row
``otwatch.records``) turns each trail entry into one message keyed by the record id.

The classifier already sends ``otwatch.record-event/1`` ``opened`` and ``evidence_attached``
on the same topic as it records events; this relay sends everything after that:

    trail field                     type
    state                           state_changed
    signature                       signed
    external_ticket                 ticket_linked (first time) / ticket_updated
    external_refs                   reference_added
    comment                         commented
    any other field (sections,      field_updated
    ticket.status, severity, ...)

(``record`` and ``evidence`` entries are the classifier's own ``opened`` and
``evidence_attached``, not sent again.) Each message carries ``message_id`` = the trail seq
(at least once: a consumer dedupes on it), the record's fixed facts, the field, its old and
new value as JSON (the whole value, as the trail holds it), the actor, the time and the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from agent.kafka.client_logs import demote_kafka_client_logs
from agent.kafka.settings import KafkaSettings, TopicNames
from agent.kafka.startup import start_with_retry
from agent.kafka.topics import ensure_topics
from agent.runtime.tasks import log_task_crash
from detectors.records import (
    Outgoing,
    RecordHeader,
    RecordStore,
    TrailCursor,
    TrailEntry,
    TrailRelay,
)

log = logging.getLogger("detectors.record_changes")

SCHEMA = "otwatch.record-change/1"
DEFAULT_TOPIC = TopicNames().records
_TYPES = {"state": "state_changed", "signature": "signed", "external_refs": "reference_added",
          "comment": "commented"}
_CLASSIFIER_OWN = ("record", "evidence")


def _json(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def change_type(entry: TrailEntry) -> str | None:
    if entry.field in _CLASSIFIER_OWN:
        return None
    if entry.field == "external_ticket":
        return "ticket_linked" if entry.old is None else "ticket_updated"
    return _TYPES.get(entry.field, "field_updated")


def record_change_messages(entry: TrailEntry, header: RecordHeader) -> list[Outgoing]:
    """The ``otwatch.record-change/1`` message of one trail entry (pure; none for the
    classifier's own entries)."""
    kind = change_type(entry)
    if kind is None:
        return []
    body = {
        "schema": SCHEMA, "type": kind, "message_id": str(entry.seq), "trail_seq": entry.seq,
        "record_id": entry.record_id, "ticket_id": header.security_ticket,
        "classification": header.classification, "site": header.site, "line": header.line,
        "controller": header.controller, "tag": header.tag, "field": entry.field,
        "old": _json(entry.old), "new": _json(entry.new), "actor": entry.actor,
        "at": entry.at, "reason": entry.reason,
    }
    return [Outgoing(key=entry.record_id.encode(), value=body)]


class RecordTopicSink:
    """Sends relay messages to one topic; `send` returns once the broker acknowledged all."""

    failures: tuple[type[BaseException], ...] = (KafkaError,)

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self.kafka = kafka
        self.topic = topic
        self._producer: AIOKafkaProducer | None = None

    async def open(self, stop: asyncio.Event) -> bool:
        demote_kafka_client_logs()
        producer = await start_with_retry(
            lambda: AIOKafkaProducer(**self.kafka.producer_kwargs()), self.kafka,
            "record-change producer", stop)
        if producer is None:
            return False
        self._producer = producer
        await ensure_topics(self.kafka, [self.topic])
        return True

    async def send(self, messages: Sequence[Outgoing]) -> None:
        assert self._producer is not None, "RecordTopicSink.send before open"
        sends = [await self._producer.send(self.topic, orjson.dumps(m.value), key=m.key)
                 for m in messages]
        acks = await asyncio.gather(*sends, return_exceptions=True)
        failed = [a for a in acks if isinstance(a, BaseException)]
        if failed:
            raise failed[0]

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()


class RecordChangePublisher:
    """Follows the trail and publishes every record change; `start()` / `stop()`."""

    def __init__(self, store: RecordStore, cursor: TrailCursor, kafka: KafkaSettings, *,
                 topic: str = DEFAULT_TOPIC, interval_s: float = 1.0) -> None:
        self.relay = TrailRelay(store, cursor, record_change_messages,
                                RecordTopicSink(kafka, topic), name="record-changes",
                                interval_s=interval_s)

    async def start(self) -> None:
        await self.relay.start(on_crash=log_task_crash)

    async def stop(self, timeout_s: float = 10.0) -> None:
        await self.relay.stop(timeout_s)
        self.relay.cursor.close()
