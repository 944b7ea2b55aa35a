"""Alerts as ArcSight Common Event Format (CEF) text, for a SIEM's syslog input.

``CEF:0|otwatch|otwatch|<version>|<rule id>|<title>|<severity 0-10>|<extension>``

The signature id is the first rule that fired (every rule is in ``cs1``); severity maps low 3,
medium 5, high 8, critical 10. The extension uses the standard keys where one fits (``rt``,
``externalId``, ``msg``, ``cat``, ``dhost``, ``suser``), the labelled custom strings ``cs1`` to
``cs6`` for rules, ATT&CK for ICS technique ids, master record, ticket, tag and change kind, and
``otwatch``-prefixed keys for the rest (CEF's way of naming vendor fields).

Escaping as the CEF specification says: in the header ``\\`` and ``|``; in extension values
``\\`` and ``=``, with line breaks written as ``\\n`` and ``\\r``. Header fields cannot hold a
line break (it becomes a space), and any other control character (tabs included; rsyslog would
mangle them) becomes U+FFFD, so one alert
is always one line whatever a hostile event held.

A CEF message stays within a size a syslog collector takes (`fit_cef`): texts are cut to a
length, and the lengths shrink until the message fits.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from agent import __version__
from agent.contract import SuspectChange
from detectors.alert_formats.native import Alert, alert_for, alert_title
from detectors.classification import Classification
from detectors.records import RecordOutcome

VENDOR = PRODUCT = "otwatch"
SEVERITY = {"low": 3, "medium": 5, "high": 8, "critical": 10}
#: (most characters of a name or id, of a value or the description): tried in order until
#: the message fits; the last always fits within 4 KiB whatever the alert held.
CUTS = ((256, 1024), (64, 256), (16, 32))

#: Control characters (C0 but the line breaks, which are escaped; DEL; C1) and the Unicode
#: line and paragraph separators: a viewer could break a line at them.
_CONTROL = re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_HEADER = str.maketrans({"\\": "\\\\", "|": "\\|", "\n": " ", "\r": " "})
_VALUE = str.maketrans({"\\": "\\\\", "=": "\\=", "\n": "\\n", "\r": "\\r"})


def cef_for(event: SuspectChange, cls: Classification, outcome: RecordOutcome) -> bytes:
    """The alert as one CEF line (UTF-8)."""
    return cef_from_alert(alert_for(event, cls, outcome)).encode()


def cef_from_alert(alert: Alert, cut: tuple[int, int] = CUTS[0]) -> str:
    """A native alert as CEF text; names cut to ``cut[0]`` characters, values and the
    description to ``cut[1]`` (a cut text ends with an ellipsis)."""
    names, texts = (_cutter(limit) for limit in cut)
    rules = [str(rule) for rule in alert.get("rules_fired") or []]
    header = [
        "CEF:0", VENDOR, PRODUCT, __version__,
        names(rules[0] if rules else str(alert.get("classification", "alert"))),
        texts(alert_title(alert)),
        str(SEVERITY.get(str(alert.get("severity")), 5)),
    ]
    line = "|".join(_header_text(field) for field in header[1:])
    extension = " ".join(
        f"{key}={_value_text(value)}" for key, value in _extension(alert, names, texts) if value
    )
    return f"CEF:0|{line}|{extension}"


def fit_cef(alert: Alert, max_bytes: int, wrap: Callable[[str], bytes]) -> bytes:
    """``wrap(cef)`` (e.g. a syslog message) within ``max_bytes``: texts are cut shorter
    until it fits; the last cut is taken whatever its size (it is always far below 4 KiB)."""
    for cut in CUTS:
        message = wrap(cef_from_alert(alert, cut))
        if len(message) <= max_bytes:
            break
    return message


def _extension(
    alert: Alert, names: Callable[[str], str], texts: Callable[[str], str]
) -> list[tuple[str, str]]:
    rules = ",".join(str(rule) for rule in alert.get("rules_fired") or [])
    techniques = ",".join(str(t) for t in alert.get("attack_techniques") or [])
    return [
        ("rt", _epoch_ms(alert.get("time"))),
        ("externalId", names(_text(alert.get("alert_id")))),
        ("cat", names(_text(alert.get("classification")))),
        ("dhost", names(_text(alert.get("controller")))),
        ("suser", names(_text(alert.get("actor")))),
        ("cs1Label", "rules"), ("cs1", texts(rules)),
        ("cs2Label", "attackIcsTechniques"), ("cs2", texts(techniques)),
        ("cs3Label", "masterRecord"), ("cs3", names(_text(alert.get("master_record")))),
        ("cs4Label", "securityTicket"), ("cs4", names(_text(alert.get("security_ticket")))),
        ("cs5Label", "tag"), ("cs5", names(_text(alert.get("tag")))),
        ("cs6Label", "changeKind"), ("cs6", names(_text(alert.get("change_kind")))),
        ("otwatchVerdict", names(_text(alert.get("verdict")))),
        ("otwatchSite", names(_text(alert.get("site")))),
        ("otwatchLine", names(_text(alert.get("line")))),
        ("otwatchAgent", names(_text(alert.get("agent_id")))),
        ("otwatchCriteriaVersion", names(_text(alert.get("criteria_version")))),
        ("otwatchCorrelationKey", names(_text(alert.get("correlation_key")))),
        ("otwatchNewRecord", _flag(alert.get("new_record"))),
        ("otwatchControllerValidated", _flag(alert.get("controller_validated"))),
        ("otwatchOldValue", texts(_json(alert.get("old_value")))),
        ("otwatchNewValue", texts(_json(alert.get("new_value")))),
        ("msg", texts(_text(alert.get("description")))),
    ]


def _cutter(limit: int) -> Callable[[str], str]:
    def cut(text: str) -> str:
        return text if len(text) <= limit else text[: limit - 1] + "\u2026"
    return cut


def _header_text(text: str) -> str:
    return _CONTROL.sub("\ufffd", text).translate(_HEADER)


def _value_text(text: str) -> str:
    return _CONTROL.sub("\ufffd", text).translate(_VALUE)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _flag(value: Any) -> str:
    return "" if value is None else ("true" if value else "false")


def _json(value: Any) -> str:
    """A tag value as JSON text (``{"$float": "NaN"}`` stays as the alert wrote it)."""
    return orjson.dumps(value).decode()


def _epoch_ms(time: Any) -> str:
    """CEF ``rt``: milliseconds since the epoch, or nothing for a time that does not read."""
    try:
        return str(int(datetime.fromisoformat(str(time)).timestamp() * 1000))
    except ValueError:
        return ""
