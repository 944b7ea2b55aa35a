"""The pure part of the containment publisher: which lots one trail entry held or released,
and the ``otwatch.containment/1`` message for each (tested without broker or database).

What counts as a change, per lot id (a record may list a lot more than once, e.g. held,
released and held again; the lot is *held* while any of its entries has no ``released_at``):

    held before   held after   message
    no            yes          hold     (time: the newest open hold's held_at)
    yes           no, listed   release  (time: the newest released_at)
    yes           not listed   release  (the hold was removed from the record; time: the entry's)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson

from detectors.containment.freezes import freeze_changes, freeze_message
from detectors.records import LotHold, Outgoing, RecordHeader, TrailEntry
from detectors.records.trail import iso

SCHEMA = "otwatch.containment/1"
#: Trail fields whose values carry lot holds: the whole section, or its list of holds.
CONTAINMENT_FIELDS = ("containment", "containment.lot_holds")

Action = Literal["hold", "release"]


@dataclass(frozen=True, slots=True)
class LotChange:
    """One lot held or released by one trail entry."""

    lot_id: str
    action: Action
    at: datetime
    released_by: str | None = None


def _holds(field: str, value: str | None) -> list[LotHold]:
    """The lot holds inside one side (old or new) of a containment trail entry."""
    if value is None:
        return []
    data = orjson.loads(value)
    raw = data.get("lot_holds", []) if field == "containment" else data
    return [LotHold.model_validate(item) for item in raw or []]


def _by_lot(holds: Sequence[LotHold]) -> dict[str, list[LotHold]]:
    found: dict[str, list[LotHold]] = {}
    for hold in holds:
        found.setdefault(hold.lot_id, []).append(hold)
    return found


def _open(holds: Sequence[LotHold]) -> list[LotHold]:
    return [h for h in holds if h.released_at is None]


def _change(
    lot: str, before: list[LotHold], after: list[LotHold], at: datetime
) -> LotChange | None:
    held_before, held_after = bool(_open(before)), bool(_open(after))
    if held_after and not held_before:
        return LotChange(lot, "hold", max(h.held_at for h in _open(after)))
    if held_before and not held_after:
        released = [h for h in after if h.released_at is not None]
        if not released:
            return LotChange(lot, "release", at)  # the hold was removed from the record
        newest = max(released, key=lambda h: h.released_at or at)
        return LotChange(lot, "release", newest.released_at or at, newest.released_by)
    return None


def lot_changes(entry: TrailEntry) -> list[LotChange]:
    """The lots one trail entry held or released (none for any other field), in lot order."""
    if entry.field not in CONTAINMENT_FIELDS:
        return []
    before = _by_lot(_holds(entry.field, entry.old))
    after = _by_lot(_holds(entry.field, entry.new))
    at = datetime.fromisoformat(entry.at)
    changes = (
        _change(lot, before.get(lot, []), after.get(lot, []), at)
        for lot in sorted(before.keys() | after.keys())
    )
    return [c for c in changes if c is not None]


def message(
    entry: TrailEntry, change: LotChange, *, ticket_id: str | None, controller: str
) -> dict[str, Any]:
    """The ``otwatch.containment/1`` message for one lot change; ``message_id`` is stable."""
    return {
        "schema": SCHEMA,
        "message_id": f"{entry.seq}/{change.lot_id}/{change.action}",
        "trail_seq": entry.seq,
        "record_id": entry.record_id,
        "ticket_id": ticket_id,
        "controller": controller,
        "lot": change.lot_id,
        "action": change.action,
        "reason": entry.reason,
        "actor": entry.actor,
        "released_by": change.released_by,
        "time": iso(change.at),
        "recorded_at": entry.at,
    }


def containment_messages(entry: TrailEntry, record: RecordHeader) -> list[Outgoing]:
    """The relay's translation: one message per lot change and per release freeze put into
    or out of effect (`freezes`), keyed by record id (so one record's holds, releases and
    freezes stay in order on one partition)."""
    key = entry.record_id.encode()
    return [
        *(Outgoing(key, message(entry, change, ticket_id=record.security_ticket,
                                controller=record.controller))
          for change in lot_changes(entry)),
        *(Outgoing(key, freeze_message(entry, change, record, SCHEMA))
          for change in freeze_changes(entry)),
    ]
