"""Which lots a trail entry held or released: pure, table-driven, no broker, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from detectors.containment import LotChange, lot_changes, message
from detectors.records import TrailEntry

T1 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
AT = "2026-11-23T12:00:00.000000+00:00"


def hold(lot: str, released: datetime | None = None, by: str | None = None) -> dict[str, Any]:
    return {"lot_id": lot, "held_at": T1.isoformat(), "released_at":
            released.isoformat() if released else None, "released_by": by}


def entry(field: str, old: Any, new: Any, seq: int = 7) -> TrailEntry:
    def dump(value: Any) -> str | None:
        return None if value is None else orjson.dumps(value).decode()

    return TrailEntry(seq=seq, record_id="NC-2026-000001", actor="jdoe", at=AT, field=field,
                      old=dump(old), new=dump(new), reason="lots at risk", prev_hash="0",
                      hash="1")


def section(*holds: dict[str, Any]) -> dict[str, Any]:
    return {"lot_holds": list(holds), "release_freeze": False, "evidence_preserved": False,
            "notes": ""}


RELEASE_AT = datetime.fromisoformat(AT)

CASES = [
    ("first hold (key)", "containment.lot_holds", [], [hold("L1")],
     [LotChange("L1", "hold", T1)]),
    ("two holds at once", "containment.lot_holds", [], [hold("L2"), hold("L1")],
     [LotChange("L1", "hold", T1), LotChange("L2", "hold", T1)]),
    ("hold (whole section)", "containment", section(), section(hold("L1")),
     [LotChange("L1", "hold", T1)]),
    ("release", "containment.lot_holds", [hold("L1")], [hold("L1", T2, "qa-lead")],
     [LotChange("L1", "release", T2, "qa-lead")]),
    ("hold removed from the record", "containment.lot_holds", [hold("L1")], [],
     [LotChange("L1", "release", RELEASE_AT)]),
    ("held again after a release", "containment.lot_holds", [hold("L1", T2)],
     [hold("L1", T2), hold("L1")], [LotChange("L1", "hold", T1)]),
    ("a second hold on a held lot", "containment.lot_holds", [hold("L1")],
     [hold("L1"), hold("L1")], []),
    ("other lots unchanged", "containment.lot_holds", [hold("L1"), hold("L2", T2)],
     [hold("L1"), hold("L2", T2), hold("L3")], [LotChange("L3", "hold", T1)]),
    ("notes only", "containment", section(hold("L1")),
     {**section(hold("L1")), "notes": "x"}, []),
    ("another containment key", "containment.notes", "", "frozen", []),
    ("another field", "log.root_cause", "", "x", []),
    ("a state change", "state", "triage", "containment", []),
]


@pytest.mark.parametrize(("field", "old", "new", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_lot_changes(field: str, old: Any, new: Any, expected: list[LotChange]) -> None:
    assert lot_changes(entry(field, old, new)) == expected


def test_message_carries_what_the_mes_needs() -> None:
    trail = entry("containment.lot_holds", [hold("L1")], [hold("L1", T2, "qa-lead")], seq=42)
    (change,) = lot_changes(trail)
    body = message(trail, change, ticket_id="SEC-2026-000001", controller="oven-01")
    assert body == {
        "schema": "otwatch.containment/1",
        "message_id": "42/L1/release",
        "trail_seq": 42,
        "record_id": "NC-2026-000001",
        "ticket_id": "SEC-2026-000001",
        "controller": "oven-01",
        "lot": "L1",
        "action": "release",
        "reason": "lots at risk",
        "actor": "jdoe",
        "released_by": "qa-lead",
        "time": "2026-11-23T11:00:00.000000+00:00",
        "recorded_at": AT,
    }
