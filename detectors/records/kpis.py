"""KPIs computed from the audit trail alone, never from the editable record fields.

- time to detect: the first event's ``occurred_at`` (in the creation entry) to record creation;
- time to contain / to close: record creation to the first trail entry entering
  ``containment`` / ``closed``;
- recurrence rate after corrective action: of the records closed (closing needs every CAPA
  action done), the share for which a new record on the same controller and tag was opened
  after the closure;
- actions done by their original due date: an action's original due date is its due date when
  it first appeared in the trail, its completion the trail time it first showed ``done``; the
  share counts actions done, or whose original due date has passed at ``now``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from statistics import fmean

import orjson

from detectors.records.models import Kpis, TrailEntry


@dataclass
class _History:
    created: datetime
    occurred: datetime
    subject: tuple[str, str]
    contained: datetime | None = None
    closed: datetime | None = None


@dataclass
class _Action:
    original_due: date
    done_at: datetime | None = None


@dataclass
class _Scan:
    records: dict[str, _History] = field(default_factory=dict)
    actions: dict[tuple[str, str], _Action] = field(default_factory=dict)


def compute(entries: Sequence[TrailEntry], now: datetime) -> Kpis:
    """All KPIs over ``entries`` (the whole trail, in seq order)."""
    scan = _Scan()
    for entry in entries:
        _take(scan, entry)
    histories = list(scan.records.values())
    closed = [h for h in histories if h.closed is not None]
    recurred = sum(1 for h in closed if _recurred(h, histories))
    due = [a for a in scan.actions.values() if a.done_at is not None or a.original_due < now.date()]
    on_time = sum(1 for a in due if a.done_at is not None and a.done_at.date() <= a.original_due)
    return Kpis(
        records=len(histories),
        mean_time_to_detect_s=_mean([(h.created - h.occurred).total_seconds() for h in histories]),
        mean_time_to_contain_s=_mean(
            [(h.contained - h.created).total_seconds() for h in histories if h.contained]
        ),
        mean_time_to_close_s=_mean(
            [(h.closed - h.created).total_seconds() for h in histories if h.closed]
        ),
        closed_with_corrective_action=len(closed),
        recurred=recurred,
        recurrence_rate=recurred / len(closed) if closed else None,
        actions_due=len(due),
        actions_done_by_original_due=on_time,
        pct_actions_done_by_original_due=100.0 * on_time / len(due) if due else None,
    )


def _mean(values: list[float]) -> float | None:
    return fmean(values) if values else None


def _take(scan: _Scan, entry: TrailEntry) -> None:
    at = datetime.fromisoformat(entry.at)
    if entry.field == "record" and entry.new:
        snap = orjson.loads(entry.new)
        scan.records[entry.record_id] = _History(
            created=at, occurred=datetime.fromisoformat(snap["occurred_at"]),
            subject=(snap["controller"], snap["tag"]),
        )
    elif entry.field == "state" and entry.new and entry.record_id in scan.records:
        _take_state(scan.records[entry.record_id], orjson.loads(entry.new), at)
    elif entry.field == "capa_actions" and entry.new:
        for action in orjson.loads(entry.new):
            _take_action(scan, entry.record_id, action, at)


def _take_state(history: _History, state: str, at: datetime) -> None:
    if state == "containment" and history.contained is None:
        history.contained = at
    if state == "closed" and history.closed is None:
        history.closed = at


def _take_action(scan: _Scan, record_id: str, action: dict[str, str], at: datetime) -> None:
    key = (record_id, action["id"])
    known = scan.actions.get(key)
    if known is None:
        known = scan.actions[key] = _Action(date.fromisoformat(action["current_due"]))
    if action.get("status") == "done" and known.done_at is None:
        known.done_at = at


def _recurred(history: _History, all_records: list[_History]) -> bool:
    assert history.closed is not None
    closed = history.closed
    return any(o.subject == history.subject and o.created > closed for o in all_records)
