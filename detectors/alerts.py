"""The classifier's messages, in and out: parsing what it reads, building what it sends.

In: ``otwatch.change/1`` events (`parse_event`) and ``otwatch.heartbeat/1`` heartbeats
(`parse_heartbeat`); anything else raises `BadMessage` with a reason for the dead-letter topic.
Out: SIEM-friendly alerts (``otwatch.alert/1``, `alert_for`), record lifecycle events for
quality / QMS integration (``otwatch.record-event/1``, `record_event`) and dead letters
(`dead_letter`). All pure: the service sends them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from agent.events import SCHEMA, SuspectChange
from agent.heartbeat import HEARTBEAT_SCHEMA, Heartbeat
from detectors.classification import Classification
from detectors.errors import BadMessage
from detectors.records import RecordOutcome

ALERT_SCHEMA = "otwatch.alert/1"
RECORD_EVENT_SCHEMA = "otwatch.record-event/1"
DLQ_SCHEMA = "otwatch.dead-letter/1"

M = TypeVar("M", bound=BaseModel)


def _parse(value: bytes | None, schema: str, model: type[M]) -> M:
    if value is None:
        raise BadMessage(f"empty message (tombstone) where {schema} was expected")
    try:
        head = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise BadMessage(f"not JSON: {exc}") from None
    if not isinstance(head, dict):
        raise BadMessage("not a JSON object")
    if head.get("schema") != schema:
        raise BadMessage(f"unknown schema {head.get('schema')!r}; this classifier reads {schema}")
    try:
        return model.model_validate(head)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadMessage(f"invalid {schema} message: {where}: {first['msg']}") from None


def parse_event(value: bytes | None) -> SuspectChange:
    """One Kafka message value to an event, or `BadMessage` with a reason a person can act on.

    ``model_validate_json`` on the bytes costs half of ``orjson.loads`` plus ``model_validate``;
    it decides alone only for a plain message that names its schema. Everything else goes the
    careful way, which names the problem for the dead-letter topic.
    """
    if value is not None and _plain(value):
        try:
            event = SuspectChange.model_validate_json(value)
        except ValidationError:
            pass
        else:
            if "schema_" in event.model_fields_set and _small_ints(event):
                return event  # (the model defaults a missing schema: the check above refuses it)
    return _parse(value, SCHEMA, SuspectChange)


def _plain(value: bytes) -> bool:
    """No NaN, Infinity or escaped code point: texts pydantic's parser and orjson may judge
    differently. The store keeps the message as evidence, which must load with orjson again."""
    return b"NaN" not in value and b"Infinity" not in value and b"\\u" not in value


def _small_ints(event: SuspectChange) -> bool:
    """No integer beyond 64 bits (orjson reads those as floats, pydantic as ints: the careful
    way keeps what the classifier always did); a recipe value takes the careful way too."""
    values = (event.seq, event.old_value, event.new_value)
    return all(
        not isinstance(v, dict) and (not isinstance(v, int) or -(2**63) <= v < 2**64)
        for v in values
    )


def parse_heartbeat(value: bytes | None) -> Heartbeat:
    beat = _parse(value, HEARTBEAT_SCHEMA, Heartbeat)
    if beat.sent_at is None:
        raise BadMessage(f"invalid {HEARTBEAT_SCHEMA} message: sent_at: missing")
    return beat


def alert_for(event: SuspectChange, cls: Classification, outcome: RecordOutcome) -> dict[str, Any]:
    """A SIEM-friendly alert: what happened, where, the decision, ATT&CK, and the linked ids.

    ``alert_id`` is the event id, stable across redeliveries, so the SIEM can dedupe. Enum
    members stand for their values (they are `StrEnum`s; orjson and json write the value):
    ``.value`` is a slow descriptor on the classifier's per-event path.
    """
    return {
        "schema": ALERT_SCHEMA,
        "alert_id": event.event_id,
        "time": event.detected_at.isoformat(),
        "classification": cls.kind,
        "severity": cls.severity,
        "rules_fired": list(cls.rules_fired),
        "criteria_version": cls.criteria_version,
        "attack_techniques": list(cls.attack_techniques),
        "attack_framework": "MITRE ATT&CK for ICS",
        "correlation_key": cls.correlation_key,
        "master_record": outcome.record_id,
        "security_ticket": outcome.ticket_id,
        "new_record": outcome.created,
        "site": event.site,
        "line": event.line,
        "controller": event.controller.id,
        "controller_validated": event.controller.validated,
        "tag": event.tag.name,
        "change_kind": event.change_kind,
        "verdict": event.verdict,
        "old_value": event.old_value,
        "new_value": event.new_value,
        "actor": event.actor,
        "agent_id": event.agent_id,
        "description": cls.description,
    }


def record_event(
    event: SuspectChange, cls: Classification, outcome: RecordOutcome, at: datetime | str
) -> dict[str, Any]:
    """A record lifecycle event: ``opened`` (with its ticket) or ``evidence_attached``."""
    assert outcome.record_id is not None
    return {
        "schema": RECORD_EVENT_SCHEMA,
        "type": "opened" if outcome.created else "evidence_attached",
        "record_id": outcome.record_id,
        "ticket_id": outcome.ticket_id,
        "classification": cls.kind,
        "severity": cls.severity,
        "rules_fired": list(cls.rules_fired),
        "criteria_version": cls.criteria_version,
        "correlation_key": cls.correlation_key,
        "event_id": event.event_id,
        "site": event.site,
        "line": event.line,
        "controller": event.controller.id,
        "tag": event.tag.name,
        "at": at if isinstance(at, str) else at.isoformat(),
    }


def alert_json(event: SuspectChange, cls: Classification, outcome: RecordOutcome) -> bytes:
    """`alert_for`, as the message value."""
    return orjson.dumps(alert_for(event, cls, outcome))


def record_event_json(
    event: SuspectChange, cls: Classification, outcome: RecordOutcome, at: str, *, opened: bool
) -> bytes:
    """`record_event` as the message value; ``opened`` also for a redelivered opening event
    (``at`` is ISO 8601 text: the service formats it once per batch)."""
    body = record_event(event, cls, outcome, at)
    body["type"] = "opened" if opened else "evidence_attached"
    return orjson.dumps(body)


def dead_letter(
    *, reason: str, topic: str, partition: int, offset: int, key: bytes | None,
    value: bytes | None, at: datetime,
) -> dict[str, Any]:
    return {
        "schema": DLQ_SCHEMA,
        "reason": reason,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key.decode("utf-8", "replace") if key else None,
        "value": value.decode("utf-8", "replace") if value is not None else None,
        "at": at.isoformat(),
    }
