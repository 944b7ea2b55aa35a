"""Valid `SuspectChange` events for tests, with any field overridden."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from agent.contract import SuspectChange

# A Monday, inside working hours.
WORKDAY = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


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
