"""Alerts as OCSF Detection Findings (class 2004, category 2 Findings), OCSF 1.1.0.

OCSF 1.1.0 is the first version with the Detection Finding class, and the one most SIEM and
data-lake ingest paths read; a finding here validates against 1.1.0 and against later 1.x
schemas (tests/siem/ocsf/ holds the JSON schemas the tests check it with). The ``host``
profile is declared, for ``device`` (the controller) and ``actor`` (who made the change).

Where the facts of the native alert (`detectors.alert_formats.native`) go:

=====================  ==============================================================
native                 OCSF
=====================  ==============================================================
alert_id               ``finding_info.uid`` and ``metadata.uid``
time                   ``time`` (epoch ms) and ``metadata.original_time`` (as given)
severity               ``severity_id`` / ``severity`` (low 2, medium 3, high 4, critical 5)
new_record             ``activity_id``: 1 Create (record opened), 2 Update (evidence)
rules_fired            ``finding_info.analytic`` (the first) + ``related_analytics``
criteria_version       ``analytic.version`` (and ``unmapped``)
attack_techniques      ``finding_info.attacks[].technique.uid`` (ATT&CK for ICS ids)
correlation_key        ``metadata.correlation_uid``
controller             ``device.uid`` / ``device.name`` (type Other: "PLC")
tag, old/new value     ``resources[0]``: name, uid ``<controller>/<tag>``, ``data``
actor                  ``actor.user.name``
description            ``message`` and ``finding_info.desc``
everything else        ``unmapped`` (classification, record, ticket, site, line, ...)
=====================  ==============================================================

`alert_from_finding` reads a finding back into the native alert (the SIEM relay forwards
either format), exactly: `finding_for` then `alert_from_finding` gives `alert_for`.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from agent import __version__
from agent.contract import SuspectChange
from detectors.alert_formats.native import (
    ALERT_SCHEMA,
    Alert,
    alert_for,
    alert_title,
)
from detectors.classification import Classification
from detectors.records import RecordOutcome

OCSF_VERSION = "1.1.0"
CLASS_UID = 2004
CATEGORY_UID = 2
PRODUCT = {"name": "otwatch", "vendor_name": "otwatch", "version": __version__}

SEVERITY_IDS = {"low": 2, "medium": 3, "high": 4, "critical": 5}
SEVERITY_NAMES = {2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
ACTIVITY_NAMES = {1: "Create", 2: "Update"}
#: OCSF observable type ids used here.
RESOURCE_UID, IP_ADDRESS, HOSTNAME, USER_NAME = 10, 2, 1, 4
#: The native fields kept as they are in ``unmapped``.
UNMAPPED = (
    "classification", "criteria_version", "attack_framework", "master_record",
    "security_ticket", "new_record", "site", "line", "controller_validated", "change_kind",
    "verdict", "agent_id",
)
_HOSTNAME = re.compile(
    r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*"
    r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])$"
)


def finding_for(
    event: SuspectChange, cls: Classification, outcome: RecordOutcome
) -> dict[str, Any]:
    """The alert as an OCSF 1.1.0 Detection Finding (a JSON object)."""
    alert = alert_for(event, cls, outcome)
    finding = finding_from_alert(alert)
    finding["start_time"] = _ms(event.occurred_at)
    device = finding["device"]
    device["desc"] = f"{event.controller.protocol} controller at {event.controller.endpoint}"
    host = _host(event.controller.endpoint)
    observables = finding["observables"]
    if host is not None:
        key, kind = ("ip", IP_ADDRESS) if _is_ip(host) else ("hostname", HOSTNAME)
        device[key] = host
        observables.append(_observable(f"device.{key}", kind, host))
    resource = finding["resources"][0]
    resource["type"] = event.tag.kind
    resource["data"].update(
        address=event.tag.address, unit=event.tag.unit,
        critical_to_quality=event.tag.critical_to_quality,
    )
    return finding


def finding_json(event: SuspectChange, cls: Classification, outcome: RecordOutcome) -> bytes:
    """`finding_for`, as the message value."""
    return orjson.dumps(finding_for(event, cls, outcome))


def finding_from_alert(alert: Alert) -> dict[str, Any]:
    """The Detection Finding of a native alert (what the alert alone says)."""
    activity = 1 if alert["new_record"] else 2
    severity = SEVERITY_IDS[str(alert["severity"])]
    finding: dict[str, Any] = {
        "activity_id": activity,
        "activity_name": ACTIVITY_NAMES[activity],
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": CLASS_UID * 100 + activity,
        "type_name": f"Detection Finding: {ACTIVITY_NAMES[activity]}",
        "severity_id": severity,
        "severity": SEVERITY_NAMES[severity],
        "status_id": 1,
        "status": "New",
        "time": _ms(datetime.fromisoformat(alert["time"])),
        "message": alert["description"],
        "metadata": _metadata(alert),
        "finding_info": _finding_info(alert),
        "device": {"type_id": 99, "type": "PLC", "uid": alert["controller"],
                   "name": alert["controller"]},
        "resources": [_resource(alert)],
        "observables": _observables(alert),
        "unmapped": {"schema": ALERT_SCHEMA, **{key: alert[key] for key in UNMAPPED}},
    }
    if alert["actor"] is not None:
        finding["actor"] = {"user": {"name": alert["actor"]}}
    return finding


def _metadata(alert: Alert) -> dict[str, Any]:
    metadata = {
        "version": OCSF_VERSION,
        "profiles": ["host"],
        "product": PRODUCT,
        "uid": alert["alert_id"],
        "original_time": alert["time"],
    }
    if alert["correlation_key"]:
        metadata["correlation_uid"] = alert["correlation_key"]
    return metadata


def _finding_info(alert: Alert) -> dict[str, Any]:
    info: dict[str, Any] = {
        "uid": alert["alert_id"],
        "title": alert_title(alert),
        "desc": alert["description"],
        "types": [str(alert["classification"]), str(alert["change_kind"]),
                  str(alert["verdict"])],
    }
    rules = [_analytic(rule, alert["criteria_version"]) for rule in alert["rules_fired"]]
    if rules:
        info["analytic"] = rules[0]
    if len(rules) > 1:
        info["related_analytics"] = rules[1:]
    if alert["attack_techniques"]:
        info["attacks"] = [{"technique": _technique(t)} for t in alert["attack_techniques"]]
    return info


def _analytic(rule: str, criteria_version: str) -> dict[str, Any]:
    """A rule of the joint criteria (OCSF analytic type 1, Rule)."""
    return {"type_id": 1, "type": "Rule", "uid": rule, "name": rule,
            "version": criteria_version, "category": "otwatch joint criteria"}


def _technique(technique: str) -> dict[str, str]:
    """An ATT&CK for ICS technique by id; the link names the matrix (T08xx are ICS ids)."""
    return {"uid": technique,
            "src_url": f"https://attack.mitre.org/techniques/{technique.replace('.', '/')}/"}


def _resource(alert: Alert) -> dict[str, Any]:
    return {
        "uid": f"{alert['controller']}/{alert['tag']}",
        "name": alert["tag"],
        "data": {"old_value": alert["old_value"], "new_value": alert["new_value"]},
    }


def _observables(alert: Alert) -> list[dict[str, Any]]:
    found = [
        _observable("device.uid", RESOURCE_UID, alert["controller"]),
        _observable("resources.uid", RESOURCE_UID, f"{alert['controller']}/{alert['tag']}"),
    ]
    if alert["actor"] is not None:
        found.append(_observable("actor.user.name", USER_NAME, alert["actor"]))
    return found


def _observable(name: str, type_id: int, value: str) -> dict[str, Any]:
    types = {RESOURCE_UID: "Resource UID", IP_ADDRESS: "IP Address", HOSTNAME: "Hostname",
             USER_NAME: "User Name"}
    return {"name": name, "type_id": type_id, "type": types[type_id], "value": value}


def alert_from_finding(finding: dict[str, Any]) -> Alert:
    """The native alert a finding of `finding_from_alert` carries.

    Raises `KeyError`, `TypeError` or `ValueError` when the finding is not one of ours.
    """
    if finding.get("class_uid") != CLASS_UID:
        raise ValueError(f"not a Detection Finding (class_uid {finding.get('class_uid')!r})")
    info, unmapped = finding["finding_info"], finding["unmapped"]
    if unmapped.get("schema") != ALERT_SCHEMA:
        raise ValueError("not an otwatch finding (unmapped.schema is not otwatch.alert/1)")
    rules = [info["analytic"], *info.get("related_analytics", [])] if "analytic" in info else []
    resource = finding["resources"][0]
    severity = SEVERITY_NAMES[finding["severity_id"]].lower()
    alert: Alert = {
        "schema": ALERT_SCHEMA,
        "alert_id": info["uid"],
        "time": finding["metadata"]["original_time"],
        "severity": severity,
        "rules_fired": [rule["uid"] for rule in rules],
        "attack_techniques": [a["technique"]["uid"] for a in info.get("attacks", [])],
        "correlation_key": finding["metadata"].get("correlation_uid", ""),
        "controller": finding["device"]["uid"],
        "tag": resource["name"],
        "old_value": resource["data"]["old_value"],
        "new_value": resource["data"]["new_value"],
        "actor": finding.get("actor", {}).get("user", {}).get("name"),
        "description": finding["message"],
    }
    alert.update({key: unmapped[key] for key in UNMAPPED})
    return alert


def _ms(moment: datetime) -> int:
    """Epoch milliseconds (OCSF ``timestamp_t``)."""
    return int(moment.timestamp() * 1000)


def _host(endpoint: str) -> str | None:
    """The host of a controller endpoint (``opc.tcp://host:4840``, ``host:502``), if any."""
    try:
        host = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}").hostname
    except ValueError:
        return None
    if host is None or not (_is_ip(host) or _HOSTNAME.fullmatch(host)):
        return None
    return host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
