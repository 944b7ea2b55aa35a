"""Which lots an incident touched, derived from the evidence: a pure suggestion quality confirms.

The affected lots are those that ran on the controller from the change until the value was
restored or containment began. The agent sends the context tags at detection (``lot`` or
``batch``), so every evidence item names the lot running then. The window ends at the first
event that puts the first change's old value back, or at ``contained_at``, whichever is first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from detectors.records.models import AffectedLot, Evidence

LOT_KEYS = ("lot", "batch")


def affected_lots(
    evidence: Sequence[Evidence], controller: str, contained_at: datetime | None = None
) -> list[AffectedLot]:
    """Lots seen in the evidence context within the window, each with first and last sighting."""
    ordered = sorted(evidence, key=lambda e: e.detected_at)
    if not ordered:
        return []
    baseline = ordered[0].old_value
    lots: dict[str, AffectedLot] = {}
    for item in ordered:
        if contained_at is not None and item.detected_at > contained_at:
            break
        lot = _lot_of(item)
        if lot is not None:
            seen = lots.get(lot)
            lots[lot] = AffectedLot(
                # The evidence's own controller (a burst spans several); rows recorded before
                # revision 0008 do not name one: the record's.
                lot_id=lot, controller=item.controller or controller,
                started_at=seen.started_at if seen else item.detected_at,
                ended_at=item.detected_at,
            )
        if item is not ordered[0] and item.new_value == baseline:
            break  # the value was restored
    return list(lots.values())


def _lot_of(item: Evidence) -> str | None:
    for key in LOT_KEYS:
        value = item.context.get(key)
        if value not in (None, ""):
            return str(value)
    return None
