"""The native alert, ``otwatch.alert/1``: what happened, where, the decision, ATT&CK, the ids.

Every other format is a mapping of this one (`detectors.alert_formats.ocsf`,
`detectors.alert_formats.cef`), so the facts an alert carries are decided here once.
"""

from __future__ import annotations

import functools
import math
from datetime import datetime, tzinfo
from typing import Any

import orjson

from agent.contract import EventLimits, SuspectChange, TagValue, encode_value, limit_value
from detectors.classification import Classification
from detectors.correlate import per_instant
from detectors.records import RecordOutcome

ALERT_SCHEMA = "otwatch.alert/1"
#: The framework the technique ids of an alert belong to.
ATTACK_FRAMEWORK = "MITRE ATT&CK for ICS"

#: An alert as a JSON object (the keys of `alert_for`).
Alert = dict[str, Any]


def alert_for(event: SuspectChange, cls: Classification, outcome: RecordOutcome) -> Alert:
    """A SIEM-friendly alert: what happened, where, the decision, ATT&CK, and the linked ids.

    ``alert_id`` is the event id, stable across redeliveries, so the SIEM can dedupe. Enum
    members stand for their values (they are `StrEnum`s; orjson and json write the value):
    ``.value`` is a slow descriptor on the classifier's per-event path.
    """
    alert = _alert(event, cls, outcome)
    alert["rules_fired"] = list(cls.rules_fired)
    alert["attack_techniques"] = list(cls.attack_techniques)
    return alert


#: Every key of an alert in its order, the fixed values filled in: `_alert` copies it and sets
#: the rest. A dict display of more than 15 pairs is built one pair at a time, growing its
#: table twice; a copy of this one is a single allocation and each key keeps its place.
_ALERT_TEMPLATE: Alert = dict.fromkeys((
    "schema", "alert_id", "time", "classification", "severity", "rules_fired",
    "criteria_version", "attack_techniques", "attack_framework", "correlation_key",
    "master_record", "security_ticket", "new_record", "site", "line", "controller",
    "controller_validated", "tag", "change_kind", "verdict", "old_value", "new_value", "actor",
    "agent_id", "description",
))
_ALERT_TEMPLATE["schema"] = ALERT_SCHEMA
_ALERT_TEMPLATE["attack_framework"] = ATTACK_FRAMEWORK


def _alert(event: SuspectChange, cls: Classification, outcome: RecordOutcome) -> Alert:
    """`alert_for` with the rules and techniques as the classification's own tuples: orjson
    writes a tuple as the same array, so `alert_json` copies neither per event. Per event, a
    finite float value and a short description are taken as they are, without a call."""
    controller, description = event.controller, cls.description
    _, record_id, ticket_id, created, _ = outcome
    old, new = event.old_value, event.new_value
    alert = _ALERT_TEMPLATE.copy()
    alert["alert_id"] = event.event_id
    alert["time"] = _time_of(event.detected_at)
    alert["classification"] = cls.kind
    alert["severity"] = cls.severity
    alert["rules_fired"] = cls.rules_fired
    alert["criteria_version"] = cls.criteria_version
    alert["attack_techniques"] = cls.attack_techniques
    alert["correlation_key"] = cls.correlation_key
    alert["master_record"] = record_id
    alert["security_ticket"] = ticket_id
    alert["new_record"] = created
    alert["site"] = event.site
    alert["line"] = event.line
    alert["controller"] = controller.id
    alert["controller_validated"] = controller.validated
    alert["tag"] = event.tag.name
    alert["change_kind"] = event.change_kind
    alert["verdict"] = event.verdict
    # (``v - v`` is 0.0 for a finite float only: `alert_value` gives those back as they are)
    alert["old_value"] = old if type(old) is float and old - old == 0.0 else alert_value(old)
    alert["new_value"] = new if type(new) is float and new - new == 0.0 else alert_value(new)
    alert["actor"] = event.actor
    alert["agent_id"] = event.agent_id
    alert["description"] = (
        description if len(description) <= MAX_DESCRIPTION_CHARS else _short(description)
    )
    return alert


@functools.lru_cache(maxsize=4096)
def _time_text(moment: datetime, zone: tzinfo | None, fold: int) -> str:
    """``moment.isoformat()``, once per instant, zone and fold: events of one poll share their
    detection time, and ``isoformat`` costs more than a cache lookup. Equal instants in other
    zones are equal datetimes, and so are two readings of one wall time of a zone (``fold``):
    the zone and the fold are part of the key, read as attributes (``utcoffset()`` would cost
    a third of the lookup)."""
    return moment.isoformat()


#: `_time_text` without a call while the instant stays the same (`per_instant`).
_time_of = per_instant(_time_text)


def alert_json(event: SuspectChange, cls: Classification, outcome: RecordOutcome) -> bytes:
    """`alert_for`, as the message value."""
    return orjson.dumps(_alert(event, cls, outcome))


#: An alert carries each value up to 4 KiB of JSON, a larger one as its truncation (SHA-256,
#: length, first characters; `agent.contract.limits`), and a description up to 2,000
#: characters: an alert stays far below any broker's message limit whatever the event held.
ALERT_VALUE_LIMITS = EventLimits(max_value_bytes=4096, head_chars=256)
MAX_DESCRIPTION_CHARS = 2000


def alert_value(value: TagValue) -> Any:
    """A value as an alert writes it: NaN and infinities as ``{"$float": ...}`` (plain JSON
    has no NaN: orjson would write ``null`` and hide the change), large ones truncated."""
    if type(value) is float and math.isfinite(value):
        return value  # (most values: what the two steps below give it, without them)
    return encode_value(limit_value(value, ALERT_VALUE_LIMITS))


def _short(text: str) -> str:
    if len(text) <= MAX_DESCRIPTION_CHARS:
        return text
    return text[: MAX_DESCRIPTION_CHARS - 1] + "\u2026"


def alert_title(alert: Alert) -> str:
    """A one-line title: ``Unapproved setpoint change on oven-01 temperature_sp``."""
    verdict = str(alert.get("verdict") or "").replace("_", " ")
    change = str(alert.get("change_kind") or "change").replace("_", " ")
    text = f"{verdict} {change} on {alert.get('controller')} {alert.get('tag')}".strip()
    return text[:1].upper() + text[1:]
