"""The data-integrity look-back proposal: from when may data be untrustworthy?

otwatch proposes the last moment it saw the controller matching its approved baseline, from
the evidence the records store holds (it keeps no baseline history of its own):

- an event with a monitoring ``gap`` (``changed_while_unwatched``, ``monitoring_gap``): the
  gap's ``start``, the last good read before the agent lost sight of the controller;
- any other suspect change: its ``occurred_at`` (the source timestamp where the protocol
  gives one): until then the controller still held the value the change replaced;

taken over the evidence of every record on the same controller that is not closed or
cancelled (an earlier open incident means the baseline was not restored since), the earliest
wins. Heartbeats are not stored by the records store, so they are not used.

    >>> proposal = propose_look_back(records, "press-01")
    >>> proposal.start, proposal.basis
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from detectors.records.models import OPEN_STATES, Evidence, MasterRecord


@dataclass(frozen=True)
class LookBack:
    """A proposed start, and the evidence it rests on in words."""

    start: datetime
    basis: str


def _last_seen_matching(item: Evidence) -> tuple[datetime, str]:
    gap = item.raw.get("gap")
    if isinstance(gap, dict) and gap.get("start"):
        start = datetime.fromisoformat(str(gap["start"]))
        return start, f"last good read before the monitoring gap of event {item.event_id}"
    return item.occurred_at, f"the value replaced by event {item.event_id} held until then"


def propose_look_back(records: Iterable[MasterRecord], controller: str,
                      record_id: str = "") -> LookBack | None:
    """The earliest last-seen-matching moment over the open records of ``controller`` (and
    record ``record_id`` itself, whatever its state); None when there is no evidence."""
    found = [
        (*_last_seen_matching(item), record.id)
        for record in records
        if record.controller == controller
        and (record.state in OPEN_STATES or record.id == record_id)
        for item in record.evidence
    ]
    if not found:
        return None
    start, why, record_id = min(found, key=lambda f: (f[0], f[2]))
    return LookBack(start, f"{why} ({record_id}, controller {controller}); proposed by otwatch "
                           f"from {len(found)} evidence item{'s' if len(found) > 1 else ''}")
