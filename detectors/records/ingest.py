"""Turning classified events into master records, one transaction per batch.

Per event: skip it if its ``event_id`` was processed before (also within the batch); mark
non-findings processed only; attach it as evidence to the open record its keys lead to;
otherwise open a new nonconformity, and its security ticket when the record concerns security
(joint or security-only: a quality-only record has none until evidence that concerns security
joins it, and then its ticket opens with a ``security_ticket`` trail entry), ids allocated from
per-year counters. What the batch reads first (the ids processed before, the open records its
keys lead to) is asked in a few statements, every id in one parameter (`ingest_state`).
Everything is collected in memory and written with one statement per table (`db.Bulk`: the
per-event rows as tuples, SQLite's executemany or PostgreSQL's COPY), so a batch of 2,000
costs a few statements. The trail gets one entry per new record (its first evidence,
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

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, select, text

from agent.contract import ChangeKind, SuspectChange, Verdict
from detectors.classification import Classification, ClassKind, Severity
from detectors.correlate import incident_key, line_key
from detectors.records.db import Bulk, Database
from detectors.records.incident import Summary
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
    CLASSIFIER,
    TrailWriter,
    append_rows,
    canonical_json,
    iso,
    utc,
)

Item = tuple[SuspectChange, Classification]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Enum member → its string, by dict lookup: `Enum.value` is a slow descriptor on the hot path.
_V: dict[Any, str] = {
    m: m.value for kind in (ChangeKind, Verdict, Severity, ClassKind) for m in kind
}

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
#: The per-event rows are tuples in table order (`Bulk.run_tuples`): no dict per row.
_EVIDENCE_COLUMNS = tuple(c.name for c in evidence.columns)
_PROCESSED_COLUMNS = tuple(c.name for c in processed_events.columns)
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


#: The classifications that have a security ticket (issue 19: not quality-only ones).
TICKETED = frozenset({ClassKind.JOINT.value, ClassKind.SECURITY_ONLY.value})


@dataclass
class _Batch:
    now: str
    year: int
    trail: TrailWriter
    open_by_key: dict[str, OpenRecord]
    burst_window_s: float = 0.0
    #: Key → record id, as claimed in the store before this batch (open records only).
    claimed: dict[str, str] = field(default_factory=dict)
    #: (event_id, record_id, processed_at) per event (`_PROCESSED_COLUMNS`).
    processed: list[tuple[str, str | None, str]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    tickets: list[dict[str, Any]] = field(default_factory=list)
    #: Evidence rows in `_EVIDENCE_COLUMNS` order (`_evidence_row`).
    evidence: list[tuple[str, ...]] = field(default_factory=list)
    touched: dict[str, OpenRecord] = field(default_factory=dict)
    counters: dict[tuple[str, int], int] = field(default_factory=dict)
    attached_to: dict[str, OpenRecord] = field(default_factory=dict)
    #: Records whose security ticket opened in this batch as evidence escalated them.
    ticketed: dict[str, OpenRecord] = field(default_factory=dict)
    #: Each instant's text (`iso`), formatted once per batch: the events of one poll share
    #: their times, and an event's occurrence is often its detection (equal instants in any
    #: offset have the same UTC text; a naive time never equals an aware one).
    times: dict[datetime, str] = field(default_factory=dict)
    #: Each detection instant in UTC and as text (`instant`), worked out once per batch.
    instants: dict[datetime, tuple[datetime, str]] = field(default_factory=dict)

    #: The last instant asked of `iso` and of `instant`, with its answer: consecutive events
    #: mostly share their times, and comparing two times with the same tzinfo object costs
    #: half a first hash of one (an aware time's hash asks its tzinfo for the offset).
    last_iso: tuple[datetime | None, str] = (None, "")
    last_instant: tuple[datetime | None, tuple[datetime, str]] = (None, (_EPOCH, ""))

    def iso(self, moment: datetime) -> str:
        """`iso` of ``moment``, formatted once per batch."""
        last, text = self.last_iso
        if last is not None and moment == last:
            return text
        found = self.times.get(moment)
        if found is None:
            found = self.times[moment] = iso(moment)
        self.last_iso = (moment, found)
        return found

    def instant(self, moment: datetime) -> tuple[datetime, str]:
        """``moment`` in UTC with the `datetime.UTC` tzinfo itself, and its `iso` text, once
        per batch. Two times with the same tzinfo object compare and subtract without asking
        it for their offsets (a parsed event's pydantic ``TzInfo``: 0.45 µs a comparison
        against 0.05), and a record's last event is compared and subtracted per event; the
        instant and its text are the same."""
        last, answer = self.last_instant
        if last is not None and moment == last:
            return answer
        found = self.instants.get(moment)
        if found is None:
            at = utc(moment)
            if at.tzinfo is not UTC:  # (utc() gives a UTC time with any zero-offset tzinfo)
                at = at.replace(tzinfo=UTC)
            # (not `self.iso`: its last instant is an event's occurrence, whose tzinfo is the
            # parsed one; a UTC time there made every next comparison ask both for offsets)
            found = self.instants[moment] = (at, iso(at))
        self.last_instant = (moment, found)
        return found


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


def record_batch(
    db: Database, items: Sequence[Item], now: datetime, window_s: float,
    raw: Sequence[bytes] | None = None, burst_window_s: float = 0.0,
) -> list[RecordOutcome]:
    """The body of `RecordStore.record_events`; the caller holds the write transaction."""
    # Each event's keys, worked out once (routing and claiming read them again).
    keyed = [_keys(ev, cls) if cls.opens_record else _NO_KEYS for ev, cls in items]
    keys = sorted({k for _, event_keys in keyed for k in event_keys})
    db.advisory_locks(keys)  # PostgreSQL: one incident, one writer (SQLite's write lock does it)
    db.lock_trail_head()
    conn = db.conn
    seen = already_processed(conn, [ev.event_id for ev, _ in items])
    open_by_key = open_records(conn, keys)
    batch = _Batch(
        now=iso(now), year=now.year, trail=TrailWriter.at_head(conn),
        open_by_key=open_by_key, burst_window_s=burst_window_s,
        claimed={key: rec.id for key, rec in open_by_key.items()},
    )
    raws: Sequence[bytes | None] = raw if raw is not None else [None] * len(items)
    outcomes = []
    # One loop, few calls per event: this is the classifier's per-event cost in the store.
    processed = batch.processed
    processed_at = batch.now
    for (ev, cls), data, (key, event_keys) in zip(items, raws, keyed, strict=True):
        event_id = ev.event_id
        placed = seen.get(event_id)
        if placed is not None:
            # (positional: keywords cost a third more per event)
            outcomes.append(RecordOutcome(event_id, placed[0], placed[1], False, True))
            continue
        if event_keys:
            rid, ticket, created = _place(conn, batch, ev, cls, window_s, data, key, event_keys)
        else:
            rid, ticket, created = None, None, False
        seen[event_id] = (rid, ticket)
        processed.append((event_id, rid, processed_at))
        outcomes.append(RecordOutcome(event_id, rid, ticket, created, False))
    _flush(conn, batch)
    return outcomes


def _place(
    db: Connection, batch: _Batch, ev: SuspectChange, cls: Classification, window_s: float,
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
        _attach(batch, rec, ev, cls, raw, detected_at, detected)
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
    batch: _Batch, keys: tuple[str, ...], cls: Classification, detected_at: datetime,
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


def _evidence_row(
    batch: _Batch, rid: str, ev: SuspectChange, cls: Classification, raw: bytes, detected: str
) -> tuple[str, ...]:
    """The evidence row, in `_EVIDENCE_COLUMNS` order (its SHA-256 is ``row[_SHA256]``)."""
    return (
        ev.event_id, rid, hashlib.sha256(raw).hexdigest(), _V[ev.change_kind], _V[ev.verdict],
        _V[cls.severity], batch.iso(ev.occurred_at), detected, batch.now, raw.decode(),
        ev.controller.id,
        ev.tag.name, _V[cls.kind], _rules_json(cls.rules_fired),
    )


_SHA256 = _EVIDENCE_COLUMNS.index("sha256")


@lru_cache(maxsize=1024)
def _rules_json(rules_fired: tuple[str, ...]) -> str:
    """The fired rules as stored: few distinct sets fire, so each is encoded once."""
    return canonical_json(list(rules_fired))


def _title(ev: SuspectChange, cls: Classification) -> str:
    return cls.description or ev.verdict_reason or _V[ev.change_kind]


def _indicators(ev: SuspectChange, cls: Classification) -> list[str]:
    return [*cls.attack_techniques, f"verdict:{_V[ev.verdict]}", f"change:{_V[ev.change_kind]}"]


def _attach(
    batch: _Batch, rec: OpenRecord, ev: SuspectChange, cls: Classification, raw: bytes,
    detected_at: datetime, detected: str,
) -> None:
    row = _evidence_row(batch, rec.id, ev, cls, raw, detected)
    batch.evidence.append(row)
    # The criteria's decision on this event alone, so verify can check its row (`replay`);
    # only ever written as canonical JSON, where the tuple of rules is the same array.
    rec.attached.append({"event_id": ev.event_id, "sha256": row[_SHA256],
                         "severity": _V[cls.severity], "detected_at": detected,
                         "classification": _V[cls.kind],
                         "rules_fired": cls.rules_fired})
    batch.attached_to[rec.id] = rec
    if detected_at > rec.last_event:
        rec.last_event = detected_at
    signature = (cls.attack_techniques, ev.verdict, ev.change_kind)
    if signature not in rec.seen_signatures:  # most events repeat the last one's indicators
        rec.seen_signatures.add(signature)
        for indicator in _indicators(ev, cls):
            if indicator not in rec.indicators:
                rec.indicators.append(indicator)
                batch.touched[rec.id] = rec
    if rec.summary.join(ev, cls, _title(ev, cls)):
        batch.touched[rec.id] = rec


def _trail_attachments(batch: _Batch) -> None:
    """One evidence entry per record per batch (each event's id and SHA-256 in it), then the
    severity rise if any: the chain covers every evidence hash at a fraction of the rows."""
    for rec in batch.attached_to.values():
        count = len(rec.attached)
        batch.trail.append(
            rec.id, CLASSIFIER, batch.now, "evidence", None, canonical_json(rec.attached),
            f"{count} correlated event{'s' if count > 1 else ''} attached as evidence",
        )
        for name, old, new, reason in rec.summary.changes(rec.start):
            batch.trail.append(rec.id, CLASSIFIER, batch.now, name, canonical_json(old),
                               canonical_json(new), reason)
        if rec.id in batch.ticketed:
            _trail_ticket_opened(batch, rec)
        elif rec.ticket is not None and len(rec.indicators) != rec.start_indicators:
            batch.trail.append(
                rec.id, CLASSIFIER, batch.now, "ticket.indicators",
                canonical_json(rec.indicators[: rec.start_indicators]),
                canonical_json(rec.indicators), "new indicators from the attached evidence",
            )


def _trail_ticket_opened(batch: _Batch, rec: OpenRecord) -> None:
    """The security ticket of a record that evidence escalated from quality-only: opened
    with the record's severity and indicators as they stand after the batch."""
    ticket = {"id": rec.ticket, "severity": _V[rec.severity], "indicators": rec.indicators}
    batch.trail.append(
        rec.id, CLASSIFIER, batch.now, "security_ticket", None, canonical_json(ticket),
        f"security ticket opened: the record is now {rec.summary.classification}",
    )


def _ticket_id(db: Connection, batch: _Batch) -> str:
    return f"SEC-{batch.year}-{_next_id(db, batch, 'SEC'):06d}"


def _open(
    db: Connection, batch: _Batch, ev: SuspectChange, cls: Classification, key: str, raw: bytes,
    detected_at: datetime, detected: str,
) -> OpenRecord:
    rid = f"NC-{batch.year}-{_next_id(db, batch, 'NC'):06d}"
    ticket = _ticket_id(db, batch) if _V[cls.kind] in TICKETED else None
    rules = canonical_json(list(cls.rules_fired))
    recurs = recurrence_of(db, ev.controller.id, ev.tag.name)
    batch.records.append({
        "id": rid, "classification": _V[cls.kind], "state": State.DETECTED.value,
        "security_ticket": ticket, "controller": ev.controller.id, "tag": ev.tag.name,
        "site": ev.site, "line": ev.line, "severity": _V[cls.severity],
        "description": _title(ev, cls),
        "detected_at": detected, "created_at": batch.now, "last_event_at": detected,
        "rules_fired": rules, "criteria_version": cls.criteria_version, "correlation_key": key,
        "quality_impact": cls.quality_impact, "security_impact": cls.security_impact,
        "recurrence_of": recurs,
    })
    indicators = _indicators(ev, cls)
    if ticket is not None:
        batch.tickets.append({
            "id": ticket, "record_id": rid, "severity": _V[cls.severity], "status": "open",
            "indicators": canonical_json(indicators),
        })
    evidence = _evidence_row(batch, rid, ev, cls, raw, detected)
    batch.evidence.append(evidence)
    snapshot = {
        "classification": _V[cls.kind], "state": State.DETECTED.value, "security_ticket": ticket,
        "controller": ev.controller.id, "tag": ev.tag.name, "site": ev.site, "line": ev.line,
        "severity": _V[cls.severity], "correlation_key": key,
        "rules_fired": list(cls.rules_fired),
        "criteria_version": cls.criteria_version, "occurred_at": batch.iso(ev.occurred_at),
        "detected_at": detected, "event_id": ev.event_id, "sha256": evidence[_SHA256],
        "quality_impact": cls.quality_impact, "security_impact": cls.security_impact,
        "recurrence_of": recurs,
        "description": batch.records[-1]["description"], "indicators": indicators,
    }
    batch.trail.append(
        rid, CLASSIFIER, batch.now, "record", None, canonical_json(snapshot),
        f"opened by the classifier: {', '.join(cls.rules_fired) or _V[cls.kind]}",
    )
    summary = Summary.of_event(ev, cls, _title(ev, cls))
    return OpenRecord(rid, ticket, detected_at, indicators, summary, summary.copy(),
                       start_indicators=len(indicators))


def recurrence_of(db: Connection, controller: str, tag: str) -> str:
    """The latest closed record on ``controller`` and ``tag`` (a new record there is a
    recurrence of it), or "". One indexed query per record opened, not per event."""
    r = records
    found = db.execute(
        select(r.c.id).where(r.c.controller == controller, r.c.tag == tag,
                             r.c.state == State.CLOSED.value)
        .order_by(r.c.created_at.desc(), r.c.id.desc()).limit(1)).scalar()
    return str(found or "")


def _next_id(db: Connection, batch: _Batch, kind: str) -> int:
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


def _flush(db: Connection, batch: _Batch) -> None:
    _many(db, _INSERT_RECORDS, batch.records)
    _many(db, _INSERT_TICKETS, batch.tickets)
    _INSERT_EVIDENCE.run_tuples(db, _EVIDENCE_COLUMNS, batch.evidence)
    _many(db, _SET_COUNTER, [
        {"b_value": value, "b_kind": kind, "b_year": year}
        for (kind, year), value in batch.counters.items()
    ])
    _flush_touched(db, batch)
    _trail_attachments(batch)
    _INSERT_PROCESSED.run_tuples(db, _PROCESSED_COLUMNS, batch.processed)
    append_rows(db, batch.trail)


def _flush_touched(db: Connection, batch: _Batch) -> None:
    """Records that got evidence (last event, what they say); tickets whose severity or
    indicators changed; the keys claimed for a record they did not lead to before."""
    _many(db, _TOUCH_RECORD, [_touch(r) for r in batch.attached_to.values()])
    _open_tickets(db, batch)
    _many(db, _TOUCH_TICKET, [
        {"b_severity": _V[r.severity], "b_indicators": canonical_json(r.indicators),
         "b_id": r.ticket}
        for r in batch.touched.values() if r.ticket is not None and r.id not in batch.ticketed
    ])
    claims = [
        {"key": key, "record_id": rec.id} for key, rec in sorted(batch.open_by_key.items())
        if batch.claimed.get(key) != rec.id
    ]
    if claims:
        db.execute(_CLAIM, claims)


def _open_tickets(db: Connection, batch: _Batch) -> None:
    """The tickets of records escalated from quality-only in this batch, and their link."""
    if not batch.ticketed:
        return
    _many(db, _INSERT_TICKETS, [
        {"id": r.ticket, "record_id": r.id, "severity": _V[r.severity], "status": "open",
         "indicators": canonical_json(r.indicators)} for r in batch.ticketed.values()
    ])
    _many(db, _LINK_TICKET, [
        {"b_id": r.id, "b_ticket": r.ticket} for r in batch.ticketed.values()
    ])


def _touch(rec: OpenRecord) -> dict[str, Any]:
    said = rec.summary
    return {
        "b_last": iso(rec.last_event), "b_severity": _V[said.severity], "b_id": rec.id,
        "b_kind": said.classification, "b_rules": canonical_json(said.rules_fired),
        "b_description": said.description, "b_controller": said.controller, "b_tag": said.tag,
    }
