"""Release freezes, the other half of what the MES must act on: a containment decision of
kind ``release_freeze`` that comes into effect stops releasing the record's line output; one
lifted (or rejected) after being in effect lets it go again.

One trail entry of ``containment.decisions`` (or the whole ``containment`` section) holds the
decision list before and after; per decision position:

    in effect before   in effect after   message
    no                 yes               freeze
    yes                no                unfreeze

The message is ``otwatch.containment/1`` like a lot hold's, with ``lot`` null, the record's
``site`` and ``line`` as the scope, and ``decision`` the decision's number on the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from detectors.records import RecordHeader, TrailEntry

FREEZE_FIELDS = ("containment", "containment.decisions")

FreezeAction = Literal["freeze", "unfreeze"]


@dataclass(frozen=True, slots=True)
class FreezeChange:
    """One release freeze coming into or out of effect."""

    decision: int
    action: FreezeAction
    owner: str
    note: str


def _freezes(field: str, value: str | None) -> dict[int, dict[str, Any]]:
    if value is None:
        return {}
    data = orjson.loads(value)
    raw = data.get("decisions", []) if field == "containment" else data
    return {n: d for n, d in enumerate(raw or []) if d.get("kind") == "release_freeze"}


def freeze_changes(entry: TrailEntry) -> list[FreezeChange]:
    """The freezes one trail entry put into or out of effect (none for any other field)."""
    if entry.field not in FREEZE_FIELDS:
        return []
    before, after = _freezes(entry.field, entry.old), _freezes(entry.field, entry.new)
    changes = []
    for n in sorted(before.keys() | after.keys()):
        was = before.get(n, {}).get("status") == "in_effect"
        now = after.get(n, {}).get("status") == "in_effect"
        if was != now:
            decision = after.get(n) or before[n]
            changes.append(FreezeChange(n, "freeze" if now else "unfreeze",
                                        str(decision.get("owner", "")),
                                        str(decision.get("note", ""))))
    return changes


def freeze_message(entry: TrailEntry, change: FreezeChange, record: RecordHeader,
                   schema: str) -> dict[str, Any]:
    """The message for one freeze change; ``message_id`` is stable across re-sends."""
    return {
        "schema": schema,
        "message_id": f"{entry.seq}/freeze-{change.decision}/{change.action}",
        "trail_seq": entry.seq, "record_id": entry.record_id,
        "ticket_id": record.security_ticket, "controller": record.controller,
        "site": record.site, "line": record.line, "lot": None,
        "action": change.action, "decision": change.decision, "owner": change.owner,
        "note": change.note, "reason": entry.reason, "actor": entry.actor,
        "time": entry.at, "recorded_at": entry.at,
    }
