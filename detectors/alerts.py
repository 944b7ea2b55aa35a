"""The classifier's messages out: alerts for security operations, record events for quality.

Record lifecycle events for quality / QMS integration (``otwatch.record-event/1``,
`record_event`). Alerts for security operations are `detectors.alert_formats` (the native
``otwatch.alert/1``, OCSF, CEF); `alert_for` and `alert_json` are re-exported here. All pure:
the recorder (`detectors.recorder`) sends them. What the classifier reads, and its dead
letters, is `detectors.messages`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from agent.contract import SuspectChange
from detectors.alert_formats.native import ALERT_SCHEMA, alert_for, alert_json, alert_value
from detectors.classification import Classification
from detectors.records import RecordOutcome

__all__ = [
    "ALERT_SCHEMA",
    "RECORD_EVENT_SCHEMA",
    "alert_for",
    "alert_json",
    "alert_value",
    "record_event",
    "record_event_json",
]

RECORD_EVENT_SCHEMA = "otwatch.record-event/1"


def record_event(
    event: SuspectChange, cls: Classification, outcome: RecordOutcome, at: datetime | str
) -> dict[str, Any]:
    """A record lifecycle event: ``opened`` (with its ticket) or ``evidence_attached``."""
    body = _record_event(event, cls, outcome, at if isinstance(at, str) else at.isoformat(),
                         opened=outcome.created)
    body["rules_fired"] = list(cls.rules_fired)
    return body


def record_event_json(
    event: SuspectChange, cls: Classification, outcome: RecordOutcome, at: str, *, opened: bool
) -> bytes:
    """`record_event` as the message value; ``opened`` also for a redelivered opening event
    (``at`` is ISO 8601 text: the service formats it once per batch)."""
    return orjson.dumps(_record_event(event, cls, outcome, at, opened=opened))


def _record_event(
    event: SuspectChange, cls: Classification, outcome: RecordOutcome, at: str, *, opened: bool
) -> dict[str, Any]:
    """`record_event` with its type given and the rules as the classification's tuple (orjson
    writes it as the same array): built once per event, with no copy and no second write."""
    assert outcome.record_id is not None
    return {
        "schema": RECORD_EVENT_SCHEMA,
        "type": "opened" if opened else "evidence_attached",
        "record_id": outcome.record_id,
        "ticket_id": outcome.ticket_id,
        "classification": cls.kind,
        "severity": cls.severity,
        "rules_fired": cls.rules_fired,
        "criteria_version": cls.criteria_version,
        "correlation_key": cls.correlation_key,
        "event_id": event.event_id,
        "site": event.site,
        "line": event.line,
        "controller": event.controller.id,
        "tag": event.tag.name,
        "at": at,
    }
