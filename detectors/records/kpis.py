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

`breakdown` gives the same measures per month, and the open records by state and age, for
the KPI page's charts (`detectors.web._kpi_page`). A record reported by hand has no event
time: its time to detect starts at the detection time the reporter gave.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from statistics import fmean

import orjson

from detectors.records.models import OPEN_STATES, Kpis, State, TrailEntry

#: Age buckets of open records: (label, upper bound in days, exclusive).
AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("under 1 day", 1), ("1-7 days", 7), ("7-30 days", 30), ("30-90 days", 90),
    ("90 days or more", float("inf")),
)
#: What became of the CAPA actions that count (`compute`), and of those not due yet.
ACTION_OUTCOMES = ("done by original due", "done late", "overdue", "not due yet")


@dataclass
class _History:
    created: datetime
    occurred: datetime
    subject: tuple[str, str]
    state: str = State.DETECTED.value
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


def _scan(entries: Sequence[TrailEntry]) -> _Scan:
    scan = _Scan()
    for entry in entries:
        _take(scan, entry)
    return scan


def compute(entries: Sequence[TrailEntry], now: datetime) -> Kpis:
    """All KPIs over ``entries`` (the whole trail, in seq order)."""
    scan = _scan(entries)
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
            created=at, subject=(snap["controller"], snap["tag"]),
            occurred=datetime.fromisoformat(snap.get("occurred_at") or snap["detected_at"]),
        )
    elif entry.field == "state" and entry.new and entry.record_id in scan.records:
        _take_state(scan.records[entry.record_id], orjson.loads(entry.new), at)
    elif entry.field == "capa_actions" and entry.new:
        for action in orjson.loads(entry.new):
            _take_action(scan, entry.record_id, action, at)


def _take_state(history: _History, state: str, at: datetime) -> None:
    history.state = state
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


@dataclass(frozen=True)
class KpiBreakdown:
    """The KPIs by calendar month (``YYYY-MM``, UTC) and the open records now.

    Times are in seconds, keyed by the month the interval ended in (detect: the record's
    creation; contain: entering containment; close: closure); ``recurrence`` maps the month
    of closure to (closed, recurred since)."""

    time_to_detect: dict[str, list[float]]
    time_to_contain: dict[str, list[float]]
    time_to_close: dict[str, list[float]]
    recurrence: dict[str, tuple[int, int]]
    actions: dict[str, int]
    open_by_state: dict[str, int]
    open_by_age: dict[str, dict[str, int]]


def breakdown(entries: Sequence[TrailEntry], now: datetime) -> KpiBreakdown:
    """`KpiBreakdown` over ``entries`` (the whole trail, in seq order)."""
    scan = _scan(entries)
    histories = list(scan.records.values())
    detect: dict[str, list[float]] = {}
    contain: dict[str, list[float]] = {}
    close: dict[str, list[float]] = {}
    recurrence: dict[str, tuple[int, int]] = {}
    for h in histories:
        detect.setdefault(_month(h.created), []).append((h.created - h.occurred).total_seconds())
        if h.contained is not None:
            contain.setdefault(_month(h.contained), []).append(
                (h.contained - h.created).total_seconds())
        if h.closed is not None:
            month = _month(h.closed)
            close.setdefault(month, []).append((h.closed - h.created).total_seconds())
            closed, recurred = recurrence.get(month, (0, 0))
            recurrence[month] = (closed + 1, recurred + _recurred(h, histories))
    opened = [h for h in histories if h.state in OPEN_STATES]
    return KpiBreakdown(
        time_to_detect=_sorted(detect), time_to_contain=_sorted(contain),
        time_to_close=_sorted(close), recurrence=dict(sorted(recurrence.items())),
        actions=_action_outcomes(scan.actions.values(), now),
        open_by_state={s.value: n for s in State if (n := sum(
            1 for h in opened if h.state == s.value))},
        open_by_age=_open_by_age(opened, now),
    )


def _month(at: datetime) -> str:
    return at.strftime("%Y-%m")


def _sorted(months: dict[str, list[float]]) -> dict[str, list[float]]:
    return dict(sorted(months.items()))


def _action_outcomes(actions: Iterable[_Action], now: datetime) -> dict[str, int]:
    counts = dict.fromkeys(ACTION_OUTCOMES, 0)
    for a in actions:
        if a.done_at is not None:
            counts["done by original due" if a.done_at.date() <= a.original_due
                   else "done late"] += 1
        else:
            counts["overdue" if a.original_due < now.date() else "not due yet"] += 1
    return counts


def _open_by_age(opened: list[_History], now: datetime) -> dict[str, dict[str, int]]:
    """Bucket label → state → count, every bucket present (an empty one shows as 0)."""
    ages: dict[str, dict[str, int]] = {label: {} for label, _ in AGE_BUCKETS}
    for h in opened:
        days = (now - h.created).total_seconds() / 86400
        label = next(label for label, limit in AGE_BUCKETS if days < limit)
        ages[label][h.state] = ages[label].get(h.state, 0) + 1
    return ages
