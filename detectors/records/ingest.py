"""Turning classified events into master records, one transaction per batch.

Per event: skip it if its ``event_id`` was processed before (also within the batch); mark
non-findings processed only; attach it as evidence to the open record of its correlation key
when its detection lies within the window of that record's last event; otherwise open a new
nonconformity and its security ticket, ids allocated from per-year counters. Everything is
collected in memory and written with ``executemany`` so a batch of 500 costs a few statements.
The trail gets one entry per new record (its first evidence included) and one per record per
batch for attached evidence (every event id and SHA-256 listed), plus any severity rise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from agent.contract import ChangeKind, SuspectChange, Verdict
from detectors.classification import SEVERITY_ORDER, Classification, ClassKind, Severity
from detectors.correlate import incident_key
from detectors.records.db import Database, Dialect
from detectors.records.models import OPEN_STATES, RecordOutcome, State
from detectors.records.trail import (
    CLASSIFIER,
    INSERT_SQL,
    TrailWriter,
    canonical_json,
    iso,
    utc,
)

Item = tuple[SuspectChange, Classification]
_Placed = tuple[str | None, str | None]  # record id, ticket id

_CHUNK = 500

#: Enum member → its string, by dict lookup: `Enum.value` is a slow descriptor on the hot path.
_V: dict[Any, str] = {
    m: m.value for kind in (ChangeKind, Verdict, Severity, ClassKind) for m in kind
}
_SEVERITY = {s.value: s for s in Severity}


@dataclass
class _OpenRecord:
    id: str
    ticket: str
    severity: Severity
    last_event: datetime
    indicators: list[str]
    start_severity: Severity
    raised_by: str = ""
    attached: list[dict[str, str]] = field(default_factory=list)
    seen_signatures: set[tuple[Any, ...]] = field(default_factory=set)


@dataclass
class _Batch:
    now: str
    year: int
    trail: TrailWriter
    open_by_key: dict[str, _OpenRecord]
    processed: list[tuple[str, str | None, str]] = field(default_factory=list)
    records: list[tuple[Any, ...]] = field(default_factory=list)
    tickets: list[tuple[Any, ...]] = field(default_factory=list)
    evidence: list[tuple[Any, ...]] = field(default_factory=list)
    touched: dict[str, _OpenRecord] = field(default_factory=dict)
    counters: dict[tuple[str, int], int] = field(default_factory=dict)
    attached_to: dict[str, _OpenRecord] = field(default_factory=dict)


def correlation_key(event: SuspectChange, cls: Classification) -> str:
    """The classifier's key; without one, the event's incident key."""
    return cls.correlation_key or incident_key(event)


def record_batch(
    db: Database, items: Sequence[Item], now: datetime, window_s: float,
    raw: Sequence[bytes] | None = None,
) -> list[RecordOutcome]:
    """The body of `RecordStore.record_events`; the caller holds the write transaction."""
    keys = sorted({correlation_key(ev, cls) for ev, cls in items if cls.opens_record})
    if db.dialect is Dialect.POSTGRESQL:
        for key in keys:
            db.query("SELECT pg_advisory_xact_lock(hashtext(?))", (key,))
        db.lock_trail_head()
    seen = _already_processed(db, [ev.event_id for ev, _ in items])
    last = db.query("SELECT seq, hash FROM audit_trail ORDER BY seq DESC LIMIT 1")
    batch = _Batch(
        now=iso(now), year=now.year, trail=TrailWriter.starting_at(last[0] if last else None),
        open_by_key=_open_records(db, keys),
    )
    raws: Sequence[bytes | None] = raw if raw is not None else [None] * len(items)
    outcomes = [
        _one(db, batch, seen, ev, cls, window_s, data)
        for (ev, cls), data in zip(items, raws, strict=True)
    ]
    _flush(db, batch)
    return outcomes


def _one(
    db: Database, batch: _Batch, seen: dict[str, _Placed], ev: SuspectChange,
    cls: Classification, window_s: float, raw: bytes | None,
) -> RecordOutcome:
    if ev.event_id in seen:
        rid, ticket = seen[ev.event_id]
        return RecordOutcome(
            event_id=ev.event_id, record_id=rid, ticket_id=ticket, created=False, duplicate=True
        )
    rid, ticket, created = None, None, False
    if cls.opens_record:
        rid, ticket, created = _place(db, batch, ev, cls, window_s, raw)
    seen[ev.event_id] = (rid, ticket)
    batch.processed.append((ev.event_id, rid, batch.now))
    return RecordOutcome(
        event_id=ev.event_id, record_id=rid, ticket_id=ticket, created=created, duplicate=False
    )


def _place(
    db: Database, batch: _Batch, ev: SuspectChange, cls: Classification, window_s: float,
    raw: bytes | None,
) -> tuple[str, str, bool]:
    key = correlation_key(ev, cls)
    raw = raw if raw is not None else ev.to_json()
    detected_at = utc(ev.detected_at)
    rec = batch.open_by_key.get(key)
    if rec is not None and abs((detected_at - rec.last_event).total_seconds()) <= window_s:
        _attach(batch, rec, ev, cls, raw, detected_at)
        return rec.id, rec.ticket, False
    rec = _open(db, batch, ev, cls, key, raw, detected_at)
    batch.open_by_key[key] = rec
    return rec.id, rec.ticket, True


def _evidence_row(
    rid: str, ev: SuspectChange, cls: Classification, raw: bytes, detected: str, now: str
) -> tuple[Any, ...]:
    return (
        ev.event_id, rid, hashlib.sha256(raw).hexdigest(), _V[ev.change_kind],
        _V[ev.verdict], _V[cls.severity], iso(ev.occurred_at), detected, now, raw.decode(),
    )


def _indicators(ev: SuspectChange, cls: Classification) -> list[str]:
    return [*cls.attack_techniques, f"verdict:{_V[ev.verdict]}", f"change:{_V[ev.change_kind]}"]


def _attach(
    batch: _Batch, rec: _OpenRecord, ev: SuspectChange, cls: Classification, raw: bytes,
    detected_at: datetime,
) -> None:
    row = _evidence_row(rec.id, ev, cls, raw, iso(detected_at), batch.now)
    batch.evidence.append(row)
    rec.attached.append({"event_id": ev.event_id, "sha256": row[2], "severity": row[5]})
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
    if SEVERITY_ORDER[cls.severity] > SEVERITY_ORDER[rec.severity]:
        rec.severity = cls.severity
        rec.raised_by = ev.event_id
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
        if rec.severity is not rec.start_severity:
            batch.trail.append(
                rec.id, CLASSIFIER, batch.now, "severity", canonical_json(rec.start_severity),
                canonical_json(rec.severity), f"evidence {rec.raised_by} is {_V[rec.severity]}",
            )


def _open(
    db: Database, batch: _Batch, ev: SuspectChange, cls: Classification, key: str, raw: bytes,
    detected_at: datetime,
) -> _OpenRecord:
    detected = iso(detected_at)
    rid = f"NC-{batch.year}-{_next_id(db, batch, 'NC'):06d}"
    ticket = f"SEC-{batch.year}-{_next_id(db, batch, 'SEC'):06d}"
    rules = canonical_json(list(cls.rules_fired))
    batch.records.append((
        rid, _V[cls.kind], State.DETECTED.value, ticket, ev.controller.id, ev.tag.name, ev.site,
        ev.line, _V[cls.severity], cls.description or ev.verdict_reason or _V[ev.change_kind],
        detected, batch.now, detected, rules, cls.criteria_version, key,
    ))
    indicators = _indicators(ev, cls)
    batch.tickets.append((ticket, rid, _V[cls.severity], "open", canonical_json(indicators)))
    evidence = _evidence_row(rid, ev, cls, raw, detected, batch.now)
    batch.evidence.append(evidence)
    snapshot = {
        "classification": _V[cls.kind], "state": State.DETECTED.value, "security_ticket": ticket,
        "controller": ev.controller.id, "tag": ev.tag.name, "site": ev.site, "line": ev.line,
        "severity": _V[cls.severity], "correlation_key": key,
        "rules_fired": list(cls.rules_fired),
        "criteria_version": cls.criteria_version, "occurred_at": iso(ev.occurred_at),
        "detected_at": detected, "event_id": ev.event_id, "sha256": evidence[2],
    }
    batch.trail.append(
        rid, CLASSIFIER, batch.now, "record", None, canonical_json(snapshot),
        f"opened by the classifier: {', '.join(cls.rules_fired) or _V[cls.kind]}",
    )
    return _OpenRecord(rid, ticket, cls.severity, detected_at, indicators, cls.severity)


def _next_id(db: Database, batch: _Batch, kind: str) -> int:
    """Per-year sequence inside the write transaction. The first id of a batch is taken with
    UPDATE … RETURNING, which row-locks the counter until commit (PostgreSQL; SQLite holds
    its write lock anyway), so later ids of the batch are counted in memory and stored once."""
    key = (kind, batch.year)
    if key in batch.counters:
        batch.counters[key] += 1
        return batch.counters[key]
    rows = db.query(
        "INSERT INTO counters (kind, year, value) VALUES (?, ?, 1) ON CONFLICT (kind, year) "
        "DO UPDATE SET value = counters.value + 1 RETURNING value",
        key,
    )
    batch.counters[key] = int(rows[0][0])
    return batch.counters[key]


def _already_processed(db: Database, event_ids: list[str]) -> dict[str, _Placed]:
    found: dict[str, _Placed] = {}
    unique = list(dict.fromkeys(event_ids))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        rows = db.query(
            "SELECT p.event_id, p.record_id, r.security_ticket FROM processed_events p "
            f"LEFT JOIN records r ON r.id = p.record_id WHERE p.event_id IN ({marks})",
            chunk,
        )
        found.update({str(r[0]): (r[1], r[2]) for r in rows})
    return found


def _open_records(db: Database, keys: list[str]) -> dict[str, _OpenRecord]:
    """The latest open record per key, with its ticket; later rows win (ordered by last event)."""
    found: dict[str, _OpenRecord] = {}
    states = ", ".join(f"'{s.value}'" for s in sorted(OPEN_STATES))
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        rows = db.query(
            "SELECT r.correlation_key, r.id, r.security_ticket, r.severity, "
            "r.last_event_at, t.indicators FROM records r JOIN tickets t ON t.record_id = r.id "
            f"WHERE r.correlation_key IN ({marks}) AND r.state IN ({states}) "
            "ORDER BY r.last_event_at",
            chunk,
        )
        for key, rid, ticket, severity, last, indicators in rows:
            found[key] = _OpenRecord(
                rid, ticket, _SEVERITY[severity], datetime.fromisoformat(last),
                list(orjson.loads(indicators)), _SEVERITY[severity],
            )
    return found


def _flush(db: Database, batch: _Batch) -> None:
    db.executemany(
        "INSERT INTO records (id, classification, state, security_ticket, controller, tag, site, "
        "line, severity, description, detected_at, created_at, last_event_at, rules_fired, "
        "criteria_version, correlation_key) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        batch.records,
    )
    db.executemany(
        "INSERT INTO tickets (id, record_id, severity, status, indicators) VALUES (?, ?, ?, ?, ?)",
        batch.tickets,
    )
    db.executemany(
        "INSERT INTO evidence (event_id, record_id, sha256, change_kind, verdict, severity, "
        "occurred_at, detected_at, attached_at, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        batch.evidence,
    )
    db.executemany(
        "UPDATE counters SET value = ? WHERE kind = ? AND year = ?",
        [(value, kind, year) for (kind, year), value in batch.counters.items()],
    )
    _flush_touched(db, batch)
    _trail_attachments(batch)
    db.executemany(
        "INSERT INTO processed_events (event_id, record_id, processed_at) VALUES (?, ?, ?)",
        batch.processed,
    )
    db.executemany(INSERT_SQL, batch.trail.rows)


def _flush_touched(db: Database, batch: _Batch) -> None:
    """Records that got evidence (last event, severity); tickets whose severity or indicators
    changed."""
    db.executemany(
        "UPDATE records SET last_event_at = ?, severity = ? WHERE id = ?",
        [(iso(r.last_event), _V[r.severity], r.id) for r in batch.attached_to.values()],
    )
    touched = list(batch.touched.values())
    db.executemany(
        "UPDATE tickets SET severity = ?, indicators = ? WHERE id = ?",
        [(_V[r.severity], canonical_json(r.indicators), r.ticket) for r in touched],
    )

