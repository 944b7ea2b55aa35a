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

import logging
from typing import Any

import orjson

from agent.kafka.settings import KafkaSettings, TopicNames
from agent.runtime.tasks import log_task_crash
from detectors.records import (
    Outgoing,
    RecordHeader,
    RecordStore,
    TrailCursor,
    TrailEntry,
    TrailRelay,
)
from detectors.relay_sink import KafkaSink

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


class RecordChangePublisher:
    """Follows the trail and publishes every record change; `start()` / `stop()`."""

    def __init__(self, store: RecordStore, cursor: TrailCursor, kafka: KafkaSettings, *,
                 topic: str = DEFAULT_TOPIC, interval_s: float = 1.0) -> None:
        self.relay = TrailRelay(store, cursor, record_change_messages,
                                KafkaSink(kafka, topic, name="record-change producer"),
                                name="record-changes", interval_s=interval_s)

    async def start(self) -> None:
        await self.relay.start(on_crash=log_task_crash)

    async def stop(self, timeout_s: float = 10.0) -> None:
        await self.relay.stop(timeout_s)
        self.relay.cursor.close()
