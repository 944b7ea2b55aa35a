"""The worklist: open records filtered, searched, sorted and paged IN SQL.

A page reads one summary row per record (no evidence, no trail, no section JSON) plus a
``COUNT`` of the matches, so the list costs the same with 10,000 records as with 10. The
filters are plain values (the web page takes them from GET parameters, so a filtered list
is a bookmark). Works on SQLite and PostgreSQL alike (SQLAlchemy Core).

    >>> found = query_worklist(conn, WorklistFilter(severity="high", q="press-01"),
    ...                        today=date(2026, 3, 2))
    >>> found.total, [row.id for row in found.rows]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, exists, func, or_, select

from detectors.records.models import OPEN_STATES, ActionStatus, State
from detectors.records.tables import capa_actions, records

#: The ways the list sorts, by the name its page shows: column and direction.
SORTS: dict[str, str] = {
    "newest": "newest detected first",
    "oldest": "oldest first (age)",
    "severity": "most severe first",
    "state": "by state",
    "overdue": "most overdue actions first",
    "id": "by record id",
}
PAGE_SIZES = (25, 50, 100)
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
_DONE = (ActionStatus.DONE.value, ActionStatus.CANCELLED.value)
STATE_CHOICES = ("open", "all", *(s.value for s in State))


class WorklistError(ValueError):
    """A filter value the worklist does not know; the message names the parameter."""


@dataclass(frozen=True)
class WorklistFilter:
    """What the worklist shows. ``state`` is a state, ``open`` (every state but closed and
    cancelled) or ``all``; ``owner`` matches the lead or the co-lead; ``overdue`` keeps
    records with a CAPA action past its current due date; ``q`` searches id, controller, tag
    and description (case-insensitive, a substring)."""

    state: str = "open"
    classification: str = ""
    severity: str = ""
    owner: str = ""
    overdue: bool = False
    q: str = ""
    sort: str = "newest"
    page: int = 1
    per_page: int = PAGE_SIZES[0]

    def __post_init__(self) -> None:
        if self.state not in STATE_CHOICES:
            raise WorklistError(f"state {self.state!r}: use one of {', '.join(STATE_CHOICES)}")
        if self.severity and self.severity not in SEVERITY_RANK:
            raise WorklistError(f"severity {self.severity!r}: use one of "
                                f"{', '.join(SEVERITY_RANK)} or leave it empty")
        if self.sort not in SORTS:
            raise WorklistError(f"sort {self.sort!r}: use one of {', '.join(SORTS)}")
        if self.per_page not in PAGE_SIZES:
            raise WorklistError(f"per_page {self.per_page}: use one of "
                                f"{', '.join(map(str, PAGE_SIZES))}")
        if self.page < 1:
            raise WorklistError(f"page {self.page}: pages count from 1")


@dataclass(frozen=True)
class WorklistRow:
    """One record as the worklist shows it (a summary: no evidence, no sections)."""

    id: str
    classification: str
    state: str
    severity: str
    security_ticket: str | None
    controller: str
    tag: str
    description: str
    detected_at: str
    last_event_at: str
    lead: str
    co_lead: str
    overdue_actions: int


@dataclass(frozen=True)
class WorklistPage:
    """One page of matches, how many match in all, and the open records by state."""

    rows: list[WorklistRow]
    total: int
    filter: WorklistFilter
    open_by_state: dict[str, int] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.filter.per_page))


def _overdue_count(today: date) -> Any:
    return (select(func.count()).select_from(capa_actions)
            .where(capa_actions.c.record_id == records.c.id,
                   capa_actions.c.status.not_in(_DONE),
                   capa_actions.c.current_due < today.isoformat())
            .scalar_subquery())


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(wanted: WorklistFilter, today: date) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if wanted.state == "open":
        found.append(records.c.state.in_(sorted(OPEN_STATES)))
    elif wanted.state != "all":
        found.append(records.c.state == wanted.state)
    if wanted.classification:
        found.append(records.c.classification == wanted.classification)
    if wanted.severity:
        found.append(records.c.severity == wanted.severity)
    if wanted.owner:
        found.append(or_(records.c.lead == wanted.owner, records.c.co_lead == wanted.owner))
    if wanted.overdue:
        found.append(exists().where(
            capa_actions.c.record_id == records.c.id, capa_actions.c.status.not_in(_DONE),
            capa_actions.c.current_due < today.isoformat()))
    if wanted.q.strip():
        pattern = _like(wanted.q.strip())
        found.append(or_(*(func.lower(column).like(pattern, escape="\\") for column in (
            records.c.id, records.c.controller, records.c.tag, records.c.description))))
    return found


def _order(sort: str, overdue: Any) -> list[Any]:
    rank = case(SEVERITY_RANK, value=records.c.severity, else_=-1)
    newest = [records.c.detected_at.desc(), records.c.id.desc()]
    return {
        "newest": newest,
        "oldest": [records.c.detected_at.asc(), records.c.id.asc()],
        "severity": [rank.desc(), *newest],
        "state": [records.c.state.asc(), *newest],
        "overdue": [overdue.desc(), *newest],
        "id": [records.c.id.asc()],
    }[sort]


def query_worklist(conn: Connection, wanted: WorklistFilter, *, today: date) -> WorklistPage:
    """One page of the worklist (``today`` decides which actions are overdue)."""
    where = _conditions(wanted, today)
    overdue = _overdue_count(today).label("overdue_actions")
    columns = [records.c[name] for name in (
        "id", "classification", "state", "severity", "security_ticket", "controller", "tag",
        "description", "detected_at", "last_event_at", "lead", "co_lead")]
    page = conn.execute(
        select(*columns, overdue).where(*where).order_by(*_order(wanted.sort, overdue))
        .limit(wanted.per_page).offset((wanted.page - 1) * wanted.per_page)).all()
    total = conn.execute(select(func.count()).select_from(records).where(*where)).scalar_one()
    by_state = conn.execute(
        select(records.c.state, func.count()).where(records.c.state.in_(sorted(OPEN_STATES)))
        .group_by(records.c.state)).all()
    return WorklistPage(rows=[WorklistRow(**row._mapping) for row in page], total=total,
                        filter=wanted, open_by_state={s: n for s, n in by_state})
