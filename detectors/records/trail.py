"""The hash-chained audit trail: canonical JSON, entry hashes, and chain verification.

Each entry's hash is SHA-256 over the canonical JSON (sorted keys, no whitespace) of the
entry's fields and the previous entry's hash, so editing, reordering or removing any row
breaks the chain from that row on. The hashing functions are pure; `append_rows`,
`head_of` and `read_entries` are the only places that touch the ``audit_trail`` table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, select

from detectors.records.db import Bulk
from detectors.records.models import TrailEntry, VerifyResult
from detectors.records.tables import audit_trail

GENESIS = "0" * 64
CLASSIFIER = "otwatch-classifier"
#: The trail's columns in row order (`TrailWriter.rows` tuples follow it).
COLUMNS = ("seq", "record_id", "actor", "at", "field", "old", "new", "reason", "prev_hash",
           "hash")
_INSERT = Bulk(audit_trail.insert())


def canonical_json(value: Any) -> str:
    """Stable JSON text: the same value always hashes the same, on every dialect."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


_ZERO = timedelta(0)


def utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive time is taken as UTC."""
    offset = moment.utcoffset()
    if offset is None:
        return moment.replace(tzinfo=UTC)
    if offset == _ZERO:
        return moment  # already UTC (pydantic's own UTC tzinfo formats as +00:00 too)
    return moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with microseconds: sorts lexically in time order; naive means UTC."""
    return utc(moment).isoformat(timespec="microseconds")


def entry_hash(
    seq: int, record_id: str, actor: str, at: str, field: str,
    old: str | None, new: str | None, reason: str, prev_hash: str,
) -> str:
    body = {
        "seq": seq, "record_id": record_id, "actor": actor, "at": at, "field": field,
        "old": old, "new": new, "reason": reason, "prev_hash": prev_hash,
    }
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class TrailWriter:
    """Builds chained rows in memory inside one write transaction, starting at the head."""

    seq: int
    head: str
    rows: list[tuple[Any, ...]]

    @classmethod
    def starting_at(cls, last: Sequence[Any] | None) -> TrailWriter:
        """A writer after ``last`` = (seq, hash) of the head entry, or at the genesis."""
        if last is None:
            return cls(0, GENESIS, [])
        return cls(int(last[0]), str(last[1]), [])

    @classmethod
    def at_head(cls, conn: Connection) -> TrailWriter:
        """A writer after the database's head entry (call inside the write transaction)."""
        return cls.starting_at(head_of(conn))

    def append(
        self, record_id: str, actor: str, at: str, field: str,
        old: str | None, new: str | None, reason: str,
    ) -> None:
        self.seq += 1
        digest = entry_hash(self.seq, record_id, actor, at, field, old, new, reason, self.head)
        row = (self.seq, record_id, actor, at, field, old, new, reason, self.head, digest)
        self.rows.append(row)
        self.head = digest


def head_of(conn: Connection) -> tuple[int, str] | None:
    """(seq, hash) of the newest trail entry, or None for an empty trail."""
    row = conn.execute(
        select(audit_trail.c.seq, audit_trail.c.hash).order_by(audit_trail.c.seq.desc()).limit(1)
    ).first()
    return None if row is None else (int(row.seq), str(row.hash))


def append_rows(conn: Connection, writer: TrailWriter) -> None:
    """Insert the writer's rows (tuples in `COLUMNS` order, as they are), in the write
    transaction that made them."""
    _INSERT.run_tuples(conn, COLUMNS, writer.rows)


def read_entries(
    conn: Connection, *where: ColumnElement[bool], limit: int | None = None
) -> list[TrailEntry]:
    """Trail entries matching ``where``, oldest first."""
    query = select(audit_trail).where(*where).order_by(audit_trail.c.seq).limit(limit)
    return [TrailEntry.model_validate(dict(row._mapping)) for row in conn.execute(query)]


def verify_entries(rows: Iterable[TrailEntry | Sequence[Any]]) -> VerifyResult:
    """Walk the chain in seq order; name the first entry whose link or hash does not hold."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    for row in rows:
        entry = row if isinstance(row, TrailEntry) else to_entry(row)
        count += 1
        problem = _problem(entry, prev, expected_seq)
        if problem:
            return VerifyResult(
                ok=False, entries=count, first_broken_seq=entry.seq, problem=problem
            )
        prev = entry.hash
        expected_seq = entry.seq + 1
    return VerifyResult(ok=True, entries=count)


def _problem(entry: TrailEntry, prev: str, expected_seq: int) -> str:
    if entry.seq != expected_seq:
        return f"entry {entry.seq}: expected seq {expected_seq} (an entry is missing)"
    if entry.prev_hash != prev:
        return f"entry {entry.seq}: prev_hash does not match the hash of entry {entry.seq - 1}"
    recomputed = entry_hash(
        entry.seq, entry.record_id, entry.actor, entry.at, entry.field,
        entry.old, entry.new, entry.reason, entry.prev_hash,
    )
    if recomputed != entry.hash:
        return f"entry {entry.seq} (record {entry.record_id}, field {entry.field}): content " \
            "does not match its hash (edited after it was written)"
    return ""


def to_entry(row: Sequence[Any]) -> TrailEntry:
    """A `TrailEntry` from a `TrailWriter` row tuple (in `COLUMNS` order)."""
    seq, record_id, actor, at, field, old, new, reason, prev_hash, digest = row
    return TrailEntry(
        seq=int(seq), record_id=record_id, actor=actor, at=at, field=field, old=old, new=new,
        reason=reason, prev_hash=prev_hash, hash=digest,
    )
