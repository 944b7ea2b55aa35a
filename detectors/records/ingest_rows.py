"""The rows and trail entries of a records batch, built in memory (`detectors.records.ingest`
places the events and writes what is built here in one transaction).

`Batch` holds what one batch writes: the per-event rows as tuples in table order (evidence,
processed events), the new records and tickets, the records that got evidence, and the trail
entries (`TrailWriter`), with each instant's text formatted once per batch. `attach` is the
per-event step of an event that joins an open record; `opened` builds the rows of a new one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from agent.contract import ChangeKind, SuspectChange, Verdict
from detectors.classification import Classification, ClassKind, Severity
from detectors.records.incident import Summary
from detectors.records.ingest_state import OpenRecord
from detectors.records.models import State
from detectors.records.tables import evidence, processed_events
from detectors.records.trail import CLASSIFIER, TrailWriter, canonical_json, iso, utc

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Enum member → its string, by dict lookup: `Enum.value` is a slow descriptor on the hot path.
V: dict[Any, str] = {
    m: m.value for kind in (ChangeKind, Verdict, Severity, ClassKind) for m in kind
}
#: The per-event rows are tuples in table order (`Bulk.run_tuples`): no dict per row.
EVIDENCE_COLUMNS = tuple(c.name for c in evidence.columns)
PROCESSED_COLUMNS = tuple(c.name for c in processed_events.columns)
#: The classifications that have a security ticket (issue 19: not quality-only ones).
TICKETED = frozenset({ClassKind.JOINT.value, ClassKind.SECURITY_ONLY.value})


@dataclass
class Batch:
    """What one records batch writes, built in memory while its events are placed."""

    now: str
    year: int
    trail: TrailWriter
    open_by_key: dict[str, OpenRecord]
    burst_window_s: float = 0.0
    #: Key → record id, as claimed in the store before this batch (open records only).
    claimed: dict[str, str] = field(default_factory=dict)
    #: (event_id, record_id, processed_at) per event (`PROCESSED_COLUMNS`).
    processed: list[tuple[str, str | None, str]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    tickets: list[dict[str, Any]] = field(default_factory=list)
    #: Evidence rows in `EVIDENCE_COLUMNS` order (`evidence_row`).
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


def evidence_row(
    batch: Batch, rid: str, ev: SuspectChange, cls: Classification, raw: bytes, detected: str
) -> tuple[str, ...]:
    """The evidence row, in `EVIDENCE_COLUMNS` order (its SHA-256 is ``row[_SHA256]``)."""
    return (
        ev.event_id, rid, hashlib.sha256(raw).hexdigest(), V[ev.change_kind], V[ev.verdict],
        V[cls.severity], batch.iso(ev.occurred_at), detected, batch.now, raw.decode(),
        ev.controller.id,
        ev.tag.name, V[cls.kind], rules_json(cls.rules_fired),
    )


_SHA256 = EVIDENCE_COLUMNS.index("sha256")


@lru_cache(maxsize=1024)
def rules_json(rules_fired: tuple[str, ...]) -> str:
    """The fired rules as stored: few distinct sets fire, so each is encoded once."""
    return canonical_json(list(rules_fired))


def title(ev: SuspectChange, cls: Classification) -> str:
    return cls.description or ev.verdict_reason or V[ev.change_kind]


def indicators(ev: SuspectChange, cls: Classification) -> list[str]:
    return [*cls.attack_techniques, f"verdict:{V[ev.verdict]}", f"change:{V[ev.change_kind]}"]


def attach(
    batch: Batch, rec: OpenRecord, ev: SuspectChange, cls: Classification, raw: bytes,
    detected_at: datetime, detected: str,
) -> None:
    """An event joins the open record ``rec``: its evidence row, its entry in the record's
    evidence trail entry, and whatever it moves in what the record says."""
    row = evidence_row(batch, rec.id, ev, cls, raw, detected)
    batch.evidence.append(row)
    # The criteria's decision on this event alone, so verify can check its row (`replay`);
    # only ever written as canonical JSON (`attached_json`: keys in sorted order here).
    rec.attached.append({"classification": V[cls.kind], "detected_at": detected,
                         "event_id": ev.event_id, "rules_fired": cls.rules_fired,
                         "severity": V[cls.severity], "sha256": row[_SHA256]})
    batch.attached_to[rec.id] = rec
    if detected_at > rec.last_event:
        rec.last_event = detected_at
    signature = (cls.attack_techniques, ev.verdict, ev.change_kind)
    if signature not in rec.seen_signatures:  # most events repeat the last one's indicators
        rec.seen_signatures.add(signature)
        for indicator in indicators(ev, cls):
            if indicator not in rec.indicators:
                rec.indicators.append(indicator)
                batch.touched[rec.id] = rec
    if rec.summary.join(ev, cls, title(ev, cls)):
        batch.touched[rec.id] = rec


def trail_attachments(batch: Batch) -> None:
    """One evidence entry per record per batch (each event's id and SHA-256 in it), then the
    severity rise if any: the chain covers every evidence hash at a fraction of the rows."""
    for rec in batch.attached_to.values():
        count = len(rec.attached)
        batch.trail.append(
            rec.id, CLASSIFIER, batch.now, "evidence", None, attached_json(rec.attached),
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


def attached_json(attached: list[dict[str, Any]]) -> str:
    """`canonical_json` of a record's attached evidence as `attach` builds it: each entry's
    keys are inserted in sorted order and its values hold no mapping, so orjson's output
    without sorting is the same text (sorting 2,000 entries' keys cost 0.8 µs per event)."""
    return orjson.dumps(attached).decode()


def _trail_ticket_opened(batch: Batch, rec: OpenRecord) -> None:
    """The security ticket of a record that evidence escalated from quality-only: opened
    with the record's severity and indicators as they stand after the batch."""
    ticket = {"id": rec.ticket, "severity": V[rec.severity], "indicators": rec.indicators}
    batch.trail.append(
        rec.id, CLASSIFIER, batch.now, "security_ticket", None, canonical_json(ticket),
        f"security ticket opened: the record is now {rec.summary.classification}",
    )


def opened(
    batch: Batch, ev: SuspectChange, cls: Classification, key: str, raw: bytes,
    detected_at: datetime, detected: str, ids: tuple[str, str | None, str],
) -> OpenRecord:
    """The rows of a new record (its record, ticket, first evidence and trail entry), with
    ``ids`` = (record id, ticket id or None, the closed record it recurs) allocated by the
    transaction; the record as the rest of the batch works on it."""
    rid, ticket, recurs = ids
    description = title(ev, cls)
    batch.records.append({
        "id": rid, "classification": V[cls.kind], "state": State.DETECTED.value,
        "security_ticket": ticket, "controller": ev.controller.id, "tag": ev.tag.name,
        "site": ev.site, "line": ev.line, "severity": V[cls.severity],
        "description": description,
        "detected_at": detected, "created_at": batch.now, "last_event_at": detected,
        "rules_fired": canonical_json(list(cls.rules_fired)),
        "criteria_version": cls.criteria_version, "correlation_key": key,
        "quality_impact": cls.quality_impact, "security_impact": cls.security_impact,
        "recurrence_of": recurs,
    })
    seen = indicators(ev, cls)
    if ticket is not None:
        batch.tickets.append({
            "id": ticket, "record_id": rid, "severity": V[cls.severity], "status": "open",
            "indicators": canonical_json(seen),
        })
    row = evidence_row(batch, rid, ev, cls, raw, detected)
    batch.evidence.append(row)
    snapshot = {
        "classification": V[cls.kind], "state": State.DETECTED.value, "security_ticket": ticket,
        "controller": ev.controller.id, "tag": ev.tag.name, "site": ev.site, "line": ev.line,
        "severity": V[cls.severity], "correlation_key": key,
        "rules_fired": list(cls.rules_fired),
        "criteria_version": cls.criteria_version, "occurred_at": batch.iso(ev.occurred_at),
        "detected_at": detected, "event_id": ev.event_id, "sha256": row[_SHA256],
        "quality_impact": cls.quality_impact, "security_impact": cls.security_impact,
        "recurrence_of": recurs, "description": description, "indicators": seen,
    }
    batch.trail.append(
        rid, CLASSIFIER, batch.now, "record", None, canonical_json(snapshot),
        f"opened by the classifier: {', '.join(cls.rules_fired) or V[cls.kind]}",
    )
    summary = Summary.of_event(ev, cls, description)
    return OpenRecord(rid, ticket, detected_at, seen, summary, summary.copy(),
                      start_indicators=len(seen))


def touch(rec: OpenRecord) -> dict[str, Any]:
    said = rec.summary
    return {
        "b_last": iso(rec.last_event), "b_severity": V[said.severity], "b_id": rec.id,
        "b_kind": said.classification, "b_rules": canonical_json(said.rules_fired),
        "b_description": said.description, "b_controller": said.controller, "b_tag": said.tag,
    }
