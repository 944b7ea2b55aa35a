"""Alert formats: one encoder per format, each a pure function of (event, classification,
record outcome) to the bytes of one message.

- ``otwatch``: the native ``otwatch.alert/1`` JSON (`native.alert_json`), the default;
- ``ocsf``: an OCSF 1.1.0 Detection Finding (`ocsf.finding_json`);
- ``cef``: an ArcSight CEF line (`cef.cef_for`), sent to a SIEM over syslog by the relay
  (`detectors.siem`), which reads either JSON format back with `read_alert`.

The classifier writes ``alerts.format`` (``otwatch`` or ``ocsf``) on the alerts topic: pick the
encoder once (`encoder_for`), not per alert.

Example::

    >>> encode = encoder_for("ocsf")
    >>> body = encode(event, classification, outcome)     # bytes for otwatch.alerts
    >>> read_alert(body)["alert_id"] == event.event_id
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import orjson

from agent.contract import SuspectChange
from detectors.alert_formats.cef import cef_for, cef_from_alert, fit_cef
from detectors.alert_formats.native import ALERT_SCHEMA, Alert, alert_for, alert_json
from detectors.alert_formats.ocsf import alert_from_finding, finding_for, finding_json
from detectors.classification import Classification
from detectors.records import RecordOutcome

#: The formats the classifier can write on the alerts topic.
TopicFormat = Literal["otwatch", "ocsf"]
Encoder = Callable[[SuspectChange, Classification, RecordOutcome], bytes]

ENCODERS: dict[str, Encoder] = {"otwatch": alert_json, "ocsf": finding_json, "cef": cef_for}


def encoder_for(name: str) -> Encoder:
    """The encoder of a format (``otwatch``, ``ocsf`` or ``cef``)."""
    return ENCODERS[name]


class UnreadableAlert(ValueError):
    """A message on the alerts topic that is neither format (the reason says why)."""


def read_alert(value: bytes | None) -> Alert:
    """The native alert in a message of the alerts topic, whichever format it was written in.

    Raises `UnreadableAlert` with a reason a person can act on.
    """
    if value is None:
        raise UnreadableAlert("empty message (tombstone)")
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise UnreadableAlert(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise UnreadableAlert("not a JSON object")
    try:
        alert = body if body.get("schema") == ALERT_SCHEMA else alert_from_finding(body)
        _check(alert)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise UnreadableAlert(
            f"neither {ALERT_SCHEMA} nor an otwatch OCSF Detection Finding: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    return alert


def _check(alert: Alert) -> None:
    """The fields every format needs, of the right kind."""
    for key in ("alert_id", "time", "severity", "controller", "tag"):
        if not isinstance(alert.get(key), str):
            raise ValueError(f"{key}: missing or not text")
    for key in ("rules_fired", "attack_techniques"):
        if not isinstance(alert.get(key, []), list):
            raise ValueError(f"{key}: not a list")


__all__ = [
    "ALERT_SCHEMA",
    "ENCODERS",
    "Alert",
    "Encoder",
    "TopicFormat",
    "UnreadableAlert",
    "alert_for",
    "alert_from_finding",
    "alert_json",
    "cef_for",
    "cef_from_alert",
    "encoder_for",
    "finding_for",
    "finding_json",
    "fit_cef",
    "read_alert",
]
