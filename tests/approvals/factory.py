"""Approved change records and keys for the approvals tests: one base record, varied per case."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agent.approvals import ApprovedChange
from agent.approvals.signing import generate_keypair

KEY_PRIVATE, KEY_PUBLIC = generate_keypair()
OTHER_PRIVATE, OTHER_PUBLIC = generate_keypair()

DAY = datetime(2026, 11, 23, tzinfo=UTC)


def at(hh: int, mm: int = 0, ss: int = 0) -> datetime:
    """A time on the test day, 2026-11-23, in UTC."""
    return DAY.replace(hour=hh, minute=mm, second=ss)


def record(**changes: Any) -> ApprovedChange:
    """CR-1: press-01/temperature_sp exactly 185.0 on 2026-11-23 08:00-20:00 UTC, by j.doe."""
    base: dict[str, Any] = {
        "id": "CR-1",
        "controller": "press-01",
        "tag": "temperature_sp",
        "expected": {"exact": 185.0},
        "valid_from": "2026-11-23T08:00:00Z",
        "valid_until": "2026-11-23T20:00:00Z",
        "approved_by": "j.doe",
        "approved_at": "2026-11-23T07:55:00Z",
        "reason": "Raise zone temperature for the new resin lot",
        "change_control_ref": "CC-1234",
    }
    base.update(changes)
    return ApprovedChange.model_validate(base)


def record_yaml(**changes: Any) -> dict[str, Any]:
    """The base record as a file would hold it (JSON-compatible)."""
    return record(**changes).model_dump(mode="json", exclude_none=True)
