"""Turning classified events into master records, one transaction per batch.

Per event: skip it if its ``event_id`` was processed before (also within the batch); mark
non-findings processed only; attach it as evidence to the open record its keys lead to;
otherwise open a new nonconformity, and its security ticket when the record concerns security
(joint or security-only: a quality-only record has none until evidence that concerns security
joins it, and then its ticket opens with a ``security_ticket`` trail entry), ids allocated from
per-year counters. What the batch reads first (the ids processed before, the open records its
keys lead to) is asked in a few statements, every id in one parameter (`ingest_state`).
Everything is collected in memory (`ingest_rows`) and written with one statement per table
(`db.Bulk`: the per-event rows as tuples, SQLite's executemany or PostgreSQL's COPY), so a batch
of 2,000 costs a few statements. The trail gets one entry per new record (its first evidence,
description and ticket indicators included) and one per record per batch for attached evidence
(every event id, SHA-256 and detection time listed), plus one per field the evidence escalated
(`detectors.records.incident`), each by the classifier with its reason, and any new ticket
indicators: enough for `verify` to rebuild each record's row, ticket and evidence from the
trail alone (`replay`).

**Which record an event joins** (the correlation key and window, `detectors.correlate`):

- its correlation key's open record (``<site>/<controller>``; a burst's events carry the key
  of the burst's first event), when the event was detected within ``correlation_window_s``
  (900 s by default) of that record's last event;
- for an event of a burst, first its line's key (``burst:<site>/<line>``): another classifier
  process may already have opened the burst's record;
- for any other controller event, the line's burst record when the event was detected within
  ``burst_window_s`` of its last event (a process that saw too few controllers of the burst to
  recognise it held the event back, then released it on its own).

The keys are claimed in ``open_incidents`` (primary key: one record per key) inside this
transaction, after the per-key advisory locks (PostgreSQL) or under SQLite's write lock: a
second process waits, then finds the first one's record and attaches to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, text

from agent.contract import SuspectChange
from detectors.classification import Classification
from detectors.correlate import incident_key, line_key
from detectors.records.db import Bulk, Database
from detectors.records.ingest_rows import (
    EVIDENCE_COLUMNS,
    PROCESSED_COLUMNS,
    TICKETED,
    Batch,
    V,
    attach,
    opened,
    touch,
    trail_attachments,
)
from detectors.records.ingest_state import (
    OpenRecord,
    already_processed,
    open_records,
)
from detectors.records.models import RecordOutcome, State
from detectors.records.tables import (
    counters,
    evidence,
    processed_events,
    records,
    tickets,
)
from detectors.records.trail import (
    TrailWriter,
    append_rows,
    canonical_json,
    iso,
)

Item = tuple[SuspectChange, Classification]

# Statements built once; SQLAlchemy caches their compiled form per dialect.
_NEXT_ID = text(
    "INSERT INTO counters (kind, year, value) VALUES (:kind, :year, 1) "
    "ON CONFLICT (kind, year) DO UPDATE SET value = counters.value + 1 RETURNING value"
)
_RECORD_COLUMNS = (
    "id", "classification", "state", "security_ticket", "controller", "tag", "site", "line",
    "severity", "description", "detected_at", "created_at", "last_event_at", "rules_fired",
    "criteria_version", "correlation_key", "quality_impact", "security_impact", "recurrence_of",
)
_INSERT_RECORDS = Bulk(records.insert().values({c: bindparam(c) for c in _RECORD_COLUMNS}))
_INSERT_TICKETS = Bulk(tickets.insert())
_INSERT_EVIDENCE = Bulk(evidence.insert())
_INSERT_PROCESSED = Bulk(processed_events.insert())
_SET_COUNTER = Bulk(counters.update().where(
    counters.c.kind == bindparam("b_kind"), counters.c.year == bindparam("b_year")
).values(value=bindparam("b_value")))
_TOUCH_RECORD = Bulk(records.update().where(records.c.id == bindparam("b_id")).values(
    last_event_at=bindparam("b_last"), severity=bindparam("b_severity"),
    classification=bindparam("b_kind"), rules_fired=bindparam("b_rules"),
    description=bindparam("b_description"), controller=bindparam("b_controller"),
    tag=bindparam("b_tag"),
))
#: Claim a key for a record: insert, or take it over from a closed or out-of-window record.
_CLAIM = text(
    "INSERT INTO open_incidents (correlation_key, record_id) VALUES (:key, :record_id) "
    "ON CONFLICT (correlation_key) DO UPDATE SET record_id = excluded.record_id"
)
_LINK_TICKET = Bulk(records.update().where(records.c.id == bindparam("b_id")).values(
    security_ticket=bindparam("b_ticket")))
_TOUCH_TICKET = Bulk(tickets.update().where(tickets.c.id == bindparam("b_id")).values(
    severity=bindparam("b_severity"), indicators=bindparam("b_indicators")
))


def correlation_key(event: SuspectChange, cls: Classification) -> str:
    """The classifier's key; without one, the event's incident key."""
    return cls.correlation_key or incident_key(event)


def _keys(ev: SuspectChange, cls: Classification) -> tuple[str, tuple[str, ...]]:
    """The event's correlation key, and the keys that may lead it to an open record, in the
    order they are tried (its own key among them)."""
    own = incident_key(ev)
    key = cls.correlation_key or own
    if cls.line_key:
        return key, (cls.line_key, key, own)
    if key == own:
        return key, (key, line_key(ev))
    return key, (key,)


_NO_KEYS: tuple[str, tuple[str, ...]] = ("", ())
#: A `RecordOutcome` of its five fields in order, made as the tuple it is: its generated
#: ``__new__`` is a Python call (0.22 µs an outcome against 0.09).
_made = tuple.__new__


def _event_keys(
    items: Sequence[Item],
) -> tuple[list[str], list[tuple[str, tuple[str, ...]]], list[str]]:
    """Each event's id and keys (`_keys`; none for an event that opens no record), and
    every key of the batch sorted, in one pass over the batch (routing and claiming read
    the keys again)."""
    event_ids: list[str] = []
    keyed: list[tuple[str, tuple[str, ...]]] = []
    wanted: set[str] = set()
    add_id, add_keys, want = event_ids.append, keyed.append, wanted.update
    for ev, cls in items:
        add_id(ev.event_id)
        if cls.opens_record:
            pair = _keys(ev, cls)
            add_keys(pair)
            want(pair[1])
        else:
            add_keys(_NO_KEYS)
    return event_ids, keyed, sorted(wanted)


def record_batch(
    db: Database, items: Sequence[Item], now: datetime, window_s: float,
    raw: Sequence[bytes] | None = None, burst_window_s: float = 0.0,
) -> list[RecordOutcome]:
    """The body of `RecordStore.record_events`; the caller holds the write transaction."""
    event_ids, keyed, keys = _event_keys(items)
    db.advisory_locks(keys)  # PostgreSQL: one incident, one writer (SQLite's write lock does it)
    db.lock_trail_head()
    conn = db.conn
    seen = already_processed(conn, event_ids)
    open_by_key = open_records(conn, keys)
    batch = Batch(
        now=iso(now), year=now.year, trail=TrailWriter.at_head(conn),
        open_by_key=open_by_key, burst_window_s=burst_window_s,
        claimed={key: rec.id for key, rec in open_by_key.items()},
    )
    raws: Sequence[bytes | None] = raw if raw is not None else [None] * len(items)
    outcomes = []
    # One loop, few calls per event: this is the classifier's per-event cost in the store.
    processed = batch.processed
    processed_at = batch.now
    for (ev, cls), event_id, data, (key, event_keys) in zip(
        items, event_ids, raws, keyed, strict=True
    ):
        placed = seen.get(event_id)
        if placed is not None:
            outcomes.append(_made(RecordOutcome, (event_id, placed[0], placed[1], False, True)))
            continue
        if event_keys:
            rid, ticket, created = _place(conn, batch, ev, cls, window_s, data, key, event_keys)
        else:
            rid, ticket, created = None, None, False
        seen[event_id] = (rid, ticket)
        processed.append((event_id, rid, processed_at))
        outcomes.append(_made(RecordOutcome, (event_id, rid, ticket, created, False)))
    _flush(conn, batch)
    return outcomes


def _place(
    db: Connection, batch: Batch, ev: SuspectChange, cls: Classification, window_s: float,
    raw: bytes | None, key: str, keys: tuple[str, ...],
) -> tuple[str, str | None, bool]:
    """Attach the event to the record its ``keys`` (`_keys`) lead to, or open one."""
    raw = raw if raw is not None else ev.to_json()
    detected_at, detected = batch.instant(ev.detected_at)
    rec = _route(batch, keys, cls, detected_at, window_s)
    created = rec is None
    if rec is None:
        rec = _open(db, batch, ev, cls, key, raw, detected_at, detected)
    else:
        attach(batch, rec, ev, cls, raw, detected_at, detected)
        if rec.ticket is None and rec.summary.classification in TICKETED:
            rec.ticket = _ticket_id(db, batch)
            batch.ticketed[rec.id] = rec
    # A burst's record is claimed under the line's key and each of its controllers' keys; an
    # event that joined the line's burst claims its own controller's key for it.
    open_by_key = batch.open_by_key
    if cls.line_key:
        for claim in keys:
            open_by_key[claim] = rec
    else:
        open_by_key[key] = rec
    return rec.id, rec.ticket, created


def _route(
    batch: Batch, keys: tuple[str, ...], cls: Classification, detected_at: datetime,
    window_s: float,
) -> OpenRecord | None:
    """The open record this event joins (module docstring), or None: it opens one."""
    open_by_key = batch.open_by_key
    if cls.line_key:
        for key in keys:
            rec = open_by_key.get(key)
            if rec is not None and _within(rec, detected_at, window_s):
                return rec
    else:
        rec = open_by_key.get(keys[0])
        if rec is not None and _within(rec, detected_at, window_s):
            return rec
    if len(keys) == 2 and batch.burst_window_s > 0:  # a controller event: the line's burst
        rec = open_by_key.get(keys[1])
        if rec is not None and _within(rec, detected_at, batch.burst_window_s):
            return rec
    return None


def _within(rec: OpenRecord, detected_at: datetime, window_s: float) -> bool:
    return abs((detected_at - rec.last_event).total_seconds()) <= window_s


def _ticket_id(db: Connection, batch: Batch) -> str:
    return f"SEC-{batch.year}-{_next_id(db, batch, 'SEC'):06d}"


def _open(
    db: Connection, batch: Batch, ev: SuspectChange, cls: Classification, key: str, raw: bytes,
    detected_at: datetime, detected: str,
) -> OpenRecord:
    rid = f"NC-{batch.year}-{_next_id(db, batch, 'NC'):06d}"
    ticket = _ticket_id(db, batch) if V[cls.kind] in TICKETED else None
    recurs = recurrence_of(db, ev.controller.id, ev.tag.name)
    return opened(batch, ev, cls, key, raw, detected_at, detected, (rid, ticket, recurs))


def recurrence_of(db: Connection, controller: str, tag: str) -> str:
    """The latest closed record on ``controller`` and ``tag`` (a new record there is a
    recurrence of it), or "". One indexed query per record opened, not per event."""
    r = records
    found = db.execute(
        select(r.c.id).where(r.c.controller == controller, r.c.tag == tag,
                             r.c.state == State.CLOSED.value)
        .order_by(r.c.created_at.desc(), r.c.id.desc()).limit(1)).scalar()
    return str(found or "")


def _next_id(db: Connection, batch: Batch, kind: str) -> int:
    """Per-year sequence inside the write transaction. The first id of a batch is taken with
    UPDATE … RETURNING, which row-locks the counter until commit (PostgreSQL; SQLite holds
    its write lock anyway), so later ids of the batch are counted in memory and stored once."""
    key = (kind, batch.year)
    if key in batch.counters:
        batch.counters[key] += 1
        return batch.counters[key]
    value = db.execute(_NEXT_ID, {"kind": kind, "year": batch.year}).scalar_one()
    batch.counters[key] = int(value)
    return batch.counters[key]


def _many(db: Connection, bulk: Bulk, rows: Sequence[dict[str, Any]]) -> None:
    bulk.run(db, rows)


def _flush(db: Connection, batch: Batch) -> None:
    _many(db, _INSERT_RECORDS, batch.records)
    _many(db, _INSERT_TICKETS, batch.tickets)
    _INSERT_EVIDENCE.run_tuples(db, EVIDENCE_COLUMNS, batch.evidence)
    _many(db, _SET_COUNTER, [
        {"b_value": value, "b_kind": kind, "b_year": year}
        for (kind, year), value in batch.counters.items()
    ])
    _flush_touched(db, batch)
    trail_attachments(batch)
    _INSERT_PROCESSED.run_tuples(db, PROCESSED_COLUMNS, batch.processed)
    append_rows(db, batch.trail)


def _flush_touched(db: Connection, batch: Batch) -> None:
    """Records that got evidence (last event, what they say); tickets whose severity or
    indicators changed; the keys claimed for a record they did not lead to before."""
    _many(db, _TOUCH_RECORD, [touch(r) for r in batch.attached_to.values()])
    _open_tickets(db, batch)
    _many(db, _TOUCH_TICKET, [
        {"b_severity": V[r.severity], "b_indicators": canonical_json(r.indicators),
         "b_id": r.ticket}
        for r in batch.touched.values() if r.ticket is not None and r.id not in batch.ticketed
    ])
    claims = [
        {"key": key, "record_id": rec.id} for key, rec in sorted(batch.open_by_key.items())
        if batch.claimed.get(key) != rec.id
    ]
    if claims:
        db.execute(_CLAIM, claims)


def _open_tickets(db: Connection, batch: Batch) -> None:
    """The tickets of records escalated from quality-only in this batch, and their link."""
    if not batch.ticketed:
        return
    _many(db, _INSERT_TICKETS, [
        {"id": r.ticket, "record_id": r.id, "severity": V[r.severity], "status": "open",
         "indicators": canonical_json(r.indicators)} for r in batch.ticketed.values()
    ])
    _many(db, _LINK_TICKET, [
        {"b_id": r.id, "b_ticket": r.ticket} for r in batch.ticketed.values()
    ])
