"""Valid `SuspectChange` events (and classifications) for every test folder, in one place:

    make_event(**overrides)        a contract event on a workday, any field overridden
    numbered_event(i), numbered_events(n)
                                   event number i (seq 0: the spool assigns it), one a second
                                   from SPOOL_T0; n of them round-robin over controllers
    record_event(n), classified()  what the records store is given: event n on press-01 at
                                   RECORDS_T0 (+ minutes) and the classifier's verdict on it
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.contract import (
    ChangeKind,
    ControllerRef,
    Protocol,
    SuspectChange,
    TagKind,
    TagRef,
    Verdict,
)
from detectors.classification import Classification, ClassKind, Severity

# A Monday, inside working hours.
WORKDAY = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
#: When the spool's (delivery) events start, one a second.
SPOOL_T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
#: When the records tests' events happen (the records and web tests' clocks start here).
RECORDS_T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def make_event(**overrides: Any) -> SuspectChange:
    controller = {
        "id": "oven-01",
        "protocol": "opcua",
        "endpoint": "opc.tcp://127.0.0.1:4840",
        "validated": True,
        **overrides.pop("controller", {}),
    }
    tag = {
        "name": "temperature_sp",
        "address": "nsu=urn:x;s=T",
        "kind": "setpoint",
        "critical_to_quality": True,
        "unit": "degC",
        **overrides.pop("tag", {}),
    }
    data: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "seq": 1,
        "agent_id": "edge-01",
        "site": "plant-1",
        "line": "line-1",
        "controller": controller,
        "tag": tag,
        "old_value": 200.0,
        "new_value": 230.0,
        "occurred_at": WORKDAY,
        "detected_at": WORKDAY,
        "change_kind": "setpoint_change",
        "verdict": "unapproved",
        "verdict_reason": "no approved change record for oven-01/temperature_sp",
        "actor": None,
    }
    data.update(overrides)
    return SuspectChange.model_validate(data)


def numbered_event(
    i: int,
    *,
    controller: str = "press-01",
    verdict: Verdict = Verdict.UNAPPROVED,
    site: str = "plant-1",
    agent_id: str = "agent-1",
    event_id: str | None = None,
) -> SuspectChange:
    """Event number ``i`` (seq 0: the spool assigns the real one)."""
    at = SPOOL_T0 + timedelta(seconds=i)
    return SuspectChange(
        event_id=event_id or str(uuid.uuid4()),
        seq=0,
        agent_id=agent_id,
        site=site,
        line="line-1",
        controller=ControllerRef(id=controller, protocol=Protocol.MODBUS, endpoint="127.0.0.1:502"),
        tag=TagRef(name="zone1.temp_sp", address="holding:100", kind=TagKind.SETPOINT, unit="degC"),
        old_value=float(i),
        new_value=float(i + 1),
        occurred_at=at,
        detected_at=at,
        change_kind=ChangeKind.SETPOINT_CHANGE,
        verdict=verdict,
        verdict_reason="no approved change record",
    )


def numbered_events(n: int, controllers: int = 3, *, start: int = 0) -> list[SuspectChange]:
    """``n`` events spread round-robin over ``controllers`` controllers, every 7th authorized."""
    return [
        numbered_event(
            i,
            controller=f"press-{i % controllers:02d}",
            verdict=Verdict.AUTHORIZED if i % 7 == 0 else Verdict.UNAPPROVED,
        )
        for i in range(start, start + n)
    ]


def record_event(
    n: int, *, controller: str = "press-01", tag: str = "ZoneTemp", minutes: float = 0,
    new_value: Any = 215.0, approval: bool = False, recipe: str = "R-12",
) -> SuspectChange:
    """Event ``n`` (its id ``ev-n``, its seq ``n``) detected ``minutes`` after RECORDS_T0."""
    at = RECORDS_T0 + timedelta(minutes=minutes)
    data: dict[str, Any] = {
        "event_id": f"ev-{n}", "seq": n, "agent_id": "agent-1", "site": "plant-1",
        "line": "line-a",
        "controller": {"id": controller, "protocol": "opcua", "endpoint": "opc.tcp://x:4840",
                       "validated": True},
        "tag": {"name": tag, "address": "ns=2;s=" + tag, "kind": "setpoint",
                "critical_to_quality": True, "unit": "degC"},
        "old_value": 200.0, "new_value": new_value,
        "occurred_at": at - timedelta(seconds=30), "detected_at": at,
        "change_kind": "setpoint_change", "verdict": "unapproved",
        "context": {"lot": "LOT-7", "recipe": recipe},
    }
    if approval:
        data["approval"] = {"id": "CC-1", "valid_from": RECORDS_T0, "valid_until": RECORDS_T0,
                            "approved_by": "qa", "why_not_matched": "outside window"}
    return SuspectChange.model_validate(data)


def classified(
    kind: ClassKind = ClassKind.JOINT, severity: Severity = Severity.HIGH, key: str = "k1",
    description: str = "CTQ setpoint changed without approval",
) -> Classification:
    return Classification(
        kind=kind, severity=severity, rules_fired=("ctq-setpoint",), criteria_version="c-1",
        description=description, correlation_key=key, attack_techniques=("T0836",),
    )
