"""Affected lots from evidence: from the change until restore or containment (pure)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from detectors.records import Evidence
from detectors.records.lots import affected_lots
from tests.support.events import RECORDS_T0 as T0


def ev(minute: int, lot: str, new: Any, old: Any = 200.0) -> Evidence:
    at = T0 + timedelta(minutes=minute)
    return Evidence(event_id=f"e{minute}", sha256="0" * 64, change_kind="setpoint_change",
                    verdict="unapproved", severity="high", old_value=old, new_value=new,
                    context={"lot": lot}, occurred_at=at, detected_at=at, attached_at=at)


def test_lots_until_value_restored() -> None:
    items = [ev(0, "L1", 215.0), ev(5, "L2", 220.0, 215.0), ev(9, "L2", 200.0, 220.0),
             ev(20, "L3", 230.0, 200.0)]
    lots = affected_lots(items, "press-01")
    assert [(lot.lot_id, lot.started_at, lot.ended_at) for lot in lots] == [
        ("L1", T0, T0), ("L2", T0 + timedelta(minutes=5), T0 + timedelta(minutes=9))]


def test_lots_until_containment() -> None:
    items = [ev(0, "L1", 215.0), ev(5, "L2", 220.0), ev(20, "L3", 230.0)]
    lots = affected_lots(items, "press-01", contained_at=T0 + timedelta(minutes=10))
    assert [lot.lot_id for lot in lots] == ["L1", "L2"]
    assert affected_lots([], "press-01") == []
