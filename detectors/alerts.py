"""The classifier's messages out: alerts for security operations, record events for quality.

SIEM-friendly alerts (``otwatch.alert/1``, `alert_for`) and record lifecycle events for
quality / QMS integration (``otwatch.record-event/1``, `record_event`). All pure: the recorder
(`detectors.recorder`) sends them. What the classifier reads, and its dead letters, is
`detectors.messages`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from agent.contract import EventLimits, SuspectChange, TagValue, encode_value, limit_value
from detectors.classification import Classification
from detectors.records import RecordOutcome

ALERT_SCHEMA = "otwatch.alert/1"
RECORD_EVENT_SCHEMA = "otwatch.record-event/1"


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
        "old_value": alert_value(event.old_value),
        "new_value": alert_value(event.new_value),
        "actor": event.actor,
        "agent_id": event.agent_id,
        "description": _short(cls.description),
    }


#: An alert carries each value up to 4 KiB of JSON, a larger one as its truncation (SHA-256,
#: length, first characters; `agent.contract.limits`), and a description up to 2,000
#: characters: an alert stays far below any broker's message limit whatever the event held.
ALERT_VALUE_LIMITS = EventLimits(max_value_bytes=4096, head_chars=256)
MAX_DESCRIPTION_CHARS = 2000


def alert_value(value: TagValue) -> Any:
    """A value as an alert writes it: NaN and infinities as ``{"$float": ...}`` (plain JSON
    has no NaN: orjson would write ``null`` and hide the change), large ones truncated."""
    return encode_value(limit_value(value, ALERT_VALUE_LIMITS))


def _short(text: str) -> str:
    if len(text) <= MAX_DESCRIPTION_CHARS:
        return text
    return text[: MAX_DESCRIPTION_CHARS - 1] + "\u2026"


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
