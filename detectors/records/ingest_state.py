"""What a records batch reads before it places its events (`detectors.records.ingest`): which
events were processed before, and the open record each incident key is claimed for, with its
security ticket's indicators (or, for a quality-only record, the same read back from its
evidence).

The batch's questions are asked once each, every id in one parameter (`_at_once`): a JSON
array on SQLite, an array on PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, select

from detectors.classification import Severity
from detectors.records.driver import fetch_all
from detectors.records.incident import Summary, rank
from detectors.records.models import OPEN_STATES
from detectors.records.tables import evidence

#: Where an event processed before went: record id, ticket id.
Placed = tuple[str | None, str | None]

#: Ids per statement.
CHUNK = 500

_SEVERITY = {s.value: s for s in Severity}
_OPEN = sorted(s.value for s in OPEN_STATES)


@dataclass
class OpenRecord:
    """An open record as the batch works on it: its ticket, last event, indicators and
    headline summary (as stored, and as the batch leaves it)."""

    id: str
    ticket: str | None
    last_event: datetime
    indicators: list[str]
    summary: Summary
    start: Summary
    start_indicators: int = 0
    attached: list[dict[str, Any]] = field(default_factory=list)
    seen_signatures: set[tuple[Any, ...]] = field(default_factory=set)

    @property
    def severity(self) -> Severity:
        return self.summary.severity


#: Which of the batch's events were processed before, and where they went, with every id in
#: one parameter: a JSON array that SQLite reads with ``json_each``, an array on PostgreSQL.
#: An expanding parameter had SQLAlchemy render and bind one parameter per id (a batch of
#: 2,000 ids: 7.5 ms of Python against 4.5 ms in all).
_PROCESSED_AT_ONCE = {
    "sqlite": (
        "SELECT p.event_id, p.record_id, r.security_ticket FROM processed_events p "
        "LEFT OUTER JOIN records r ON r.id = p.record_id "
        "WHERE p.event_id IN (SELECT value FROM json_each(:ids))"
    ),
    "postgresql": (
        "SELECT p.event_id, p.record_id, r.security_ticket FROM processed_events p "
        "LEFT OUTER JOIN records r ON r.id = p.record_id WHERE p.event_id = ANY(%(ids)s)"
    ),
}


def already_processed(db: Connection, event_ids: list[str]) -> dict[str, Placed]:
    """Event id → (record id, ticket id) for each of ``event_ids`` processed before."""
    unique = list(dict.fromkeys(event_ids))
    return {event_id: (record_id, ticket)
            for event_id, record_id, ticket in _at_once(db, _PROCESSED_AT_ONCE, unique)}


#: Which record each key is claimed for, then those records that are open (with their ticket's
#: indicators), each with every id in one parameter as `_PROCESSED_AT_ONCE`. A batch of 2,000
#: events across 1,000 controllers asks for 1,000 keys or more, most of them claimed for the
#: same few records: one joined row per key (an expanding parameter per key, and the record's
#: columns repeated on every row) cost 3-4 µs per event, these two statements a third of it.
_CLAIMED_AT_ONCE = {
    "sqlite": (
        "SELECT correlation_key, record_id FROM open_incidents "
        "WHERE correlation_key IN (SELECT value FROM json_each(:ids))"
    ),
    "postgresql": (
        "SELECT correlation_key, record_id FROM open_incidents "
        "WHERE correlation_key = ANY(%(ids)s)"
    ),
}
_OPEN_RECORD = (
    "SELECT r.id, r.security_ticket, r.severity, r.last_event_at, t.indicators, "
    "r.classification, r.rules_fired, r.description, r.controller, r.tag "
    "FROM records r LEFT OUTER JOIN tickets t ON t.record_id = r.id "
    "WHERE r.state IN (" + ", ".join(f"'{state}'" for state in _OPEN) + ") AND "
)
_OPEN_AT_ONCE = {
    "sqlite": _OPEN_RECORD + "r.id IN (SELECT value FROM json_each(:ids))",
    "postgresql": _OPEN_RECORD + "r.id = ANY(%(ids)s)",
}


def _at_once(db: Connection, statements: dict[str, str], ids: list[str]) -> list[Any]:
    """The rows of the dialect's statement for ``ids``, all in one parameter, as the
    driver's tuples (`fetch_all`: a batch asks for a thousand keys or more, and a SQLAlchemy
    `Row` per row cost 1-1.5 µs per event)."""
    if not ids:
        return []
    bound = orjson.dumps(ids).decode() if db.dialect.name == "sqlite" else ids
    return fetch_all(db, statements[db.dialect.name], {"ids": bound})


def open_records(db: Connection, keys: list[str]) -> dict[str, OpenRecord]:
    """The open record each key is claimed for, with its ticket (one object per record)."""
    claimed = dict(_at_once(db, _CLAIMED_AT_ONCE, keys))
    by_id: dict[str, OpenRecord] = {}
    # Unpacked in the order of the select's columns above: on the hot path, named access
    # on each row cost three times the rest of this loop.
    for rid, ticket, severity, last, indicators, *said in _at_once(
        db, _OPEN_AT_ONCE, sorted(set(claimed.values()))
    ):
        by_id[rid] = _stored_record(rid, ticket, severity, last, indicators, said)
    _indicators_from_evidence(db, [rec for rec in by_id.values() if rec.ticket is None])
    return {key: by_id[rid] for key, rid in claimed.items() if rid in by_id}


def _indicators_from_evidence(db: Connection, ticketless: list[OpenRecord]) -> None:
    """A quality-only record keeps no ticket, so no indicators: they are read back from its
    evidence (verdicts, then kinds of change), for its headline rank and for the ticket it
    gets if security evidence joins it."""
    e = evidence
    by_id = {rec.id: rec for rec in ticketless}
    query = select(e.c.record_id, e.c.verdict, e.c.change_kind).distinct()
    found: dict[str, set[str]] = {rid: set() for rid in by_id}
    for start in range(0, len(by_id), CHUNK):
        chunk = list(by_id)[start : start + CHUNK]
        for rid, verdict, kind in db.execute(query.where(e.c.record_id.in_(chunk))).all():
            found[rid].update((f"verdict:{verdict}", f"change:{kind}"))
    for rid, rec in by_id.items():
        said = sorted(found[rid], key=lambda i: (not i.startswith("verdict:"), i))
        rec.indicators[:] = said
        rec.start_indicators = len(said)
        rec.summary.headline = rec.start.headline = headline_rank(
            rec.summary.severity.value, said)


def _stored_record(
    rid: str, ticket: str | None, severity: str, last: str, indicators: str | None,
    said: list[Any],
) -> OpenRecord:
    kind, rules, description, controller, tag = said
    seen = list(orjson.loads(indicators)) if indicators is not None else []
    summary = Summary(kind, _SEVERITY[severity], list(orjson.loads(rules)), description,
                      controller, tag, headline_rank(severity, seen))
    return OpenRecord(rid, ticket, datetime.fromisoformat(last), seen, summary, summary.copy(),
                       start_indicators=len(seen))


def headline_rank(severity: str, indicators: list[str]) -> tuple[int, int]:
    """The rank of a stored record's headline, from its ticket's indicators: the most
    serious kind of change among them (every evidence adds its ``change:<kind>``), at the
    record's severity. Reading the evidence instead would cost a scan of every row of a
    long-running record per batch; a later event of the same kind escalates only when it is
    more severe than the whole record."""
    kinds = [i.removeprefix("change:") for i in indicators if i.startswith("change:")]
    return max((rank(severity, kind) for kind in kinds), default=rank(severity, ""))
