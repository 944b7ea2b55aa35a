"""`RecordStore`: the master records on SQLite or PostgreSQL, with the same schema and behaviour.

Example::

    >>> store = open_store("records.db")
    >>> store.migrate()
    >>> outcomes = store.record_events([(event, classification)], now=now)
    >>> store.get_record(outcomes[0].record_id).security_ticket
    'SEC-2026-000001'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from detectors.records import kpis as kpi_math
from detectors.records._exceptions import (
    InvalidUpdate,
    ReasonRequired,
    RecordNotFound,
    RecordsError,
    StoreUnavailable,
)
from detectors.records.db import Database, connect, migrate, schema_version
from detectors.records.ingest import Item, record_batch
from detectors.records.lifecycle import SIGNED, check_transition
from detectors.records.load import load_records
from detectors.records.lots import affected_lots
from detectors.records.models import (
    OPEN_STATES,
    AffectedLot,
    Kpis,
    LotHold,
    MasterRecord,
    RecordOutcome,
    Signature,
    State,
    TrailEntry,
    VerifyResult,
)
from detectors.records.trail import (
    COLUMNS,
    INSERT_SQL,
    TrailWriter,
    canonical_json,
    iso,
    to_entry,
    verify_entries,
)

#: Sections of a record that people edit with `update_field` (also as ``section.key``).
EDITABLE = (
    "description", "log", "impact", "affected_lots", "containment", "rca", "capa_actions",
    "effectiveness_check",
)
_DETAILS = EDITABLE[1:]
TICKET_STATUSES = ("open", "in_progress", "resolved", "closed", "cancelled")


class RecordStore:
    """One connection to the records database; not shared between threads."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def dialect(self) -> str:
        return self._db.dialect.value

    def migrate(self) -> list[int]:
        """Bring the schema up to date (idempotent); returns the versions applied now."""
        return migrate(self._db, iso(datetime.now(UTC)))

    def schema_version(self) -> int:
        """The applied schema version; 0 for a database the store has never migrated."""
        try:
            return schema_version(self._db)
        except Exception as exc:  # the table is missing: sqlite3 and psycopg differ in class
            if "schema_version" in str(exc):
                return 0
            raise StoreUnavailable(f"cannot read the records schema version: {exc}") from exc

    def record_events(
        self, items: Sequence[Item], *, now: datetime, correlation_window_s: float = 900.0,
        raw: Sequence[bytes] | None = None,
    ) -> list[RecordOutcome]:
        """Record one batch of classified events in one transaction; see `ingest`.

        ``raw``, when given, holds the exact bytes each event was parsed from (the Kafka
        message value), one per item: the evidence then keeps and hashes what the agent
        sent, and the store skips re-serialising each event (about a sixth of its cost).
        """
        if not items:
            return []
        if raw is not None and len(raw) != len(items):
            raise RecordsError(
                f"record_events: raw has {len(raw)} entries for {len(items)} items; pass one "
                "message value per (event, classification) pair, or none"
            )
        with self._db.write():
            return record_batch(self._db, items, now, correlation_window_s, raw)

    def list_records(self) -> list[MasterRecord]:
        with self._db.read():
            return load_records(self._db)

    def get_record(self, record_id: str) -> MasterRecord:
        with self._db.read():
            return self._get(record_id)

    def _get(self, record_id: str) -> MasterRecord:
        found = load_records(self._db, record_id)
        if not found:
            raise RecordNotFound(record_id)
        return found[0]

    def lot_holds(self, record_id: str) -> list[LotHold]:
        """The record's lot holds (with releases), for a containment publisher to send to MES."""
        return self.get_record(record_id).containment.lot_holds

    def suggest_affected_lots(self, record_id: str) -> list[AffectedLot]:
        """Lots from the evidence context, until restore or the trail's containment time."""
        record = self.get_record(record_id)
        contained = next(
            (datetime.fromisoformat(e.at) for e in self.trail(record_id)
             if e.field == "state" and e.new == canonical_json(State.CONTAINMENT.value)),
            None,
        )
        return affected_lots(record.evidence, record.controller, contained)

    def trail_since(self, after_seq: int, limit: int = 1000) -> list[TrailEntry]:
        """Trail entries after ``after_seq``, oldest first: how a publisher (containment holds
        to ``otwatch.containment``, QMS sync) follows changes without missing any."""
        with self._db.read():
            rows = self._db.query(
                f"SELECT {COLUMNS} FROM audit_trail WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            )
        return [to_entry(r) for r in rows]

    def trail(self, record_id: str | None = None) -> list[TrailEntry]:
        where, params = ("WHERE record_id = ?", (record_id,)) if record_id else ("", ())
        with self._db.read():
            rows = self._db.query(
                f"SELECT {COLUMNS} FROM audit_trail {where} ORDER BY seq", params
            )
        return [to_entry(r) for r in rows]

    def verify_trail(self) -> VerifyResult:
        """Recompute the hash chain; names the first entry that was edited, moved or removed."""
        with self._db.read():
            rows = self._db.query(f"SELECT {COLUMNS} FROM audit_trail ORDER BY seq")
        return verify_entries(rows)

    def kpis(self, now: datetime) -> Kpis:
        """KPIs from the audit trail only (see `detectors.records.kpis`)."""
        return kpi_math.compute(self.trail(), now)

    def update_field(
        self, record_id: str, field: str, value: Any, *, actor: str, reason: str, now: datetime
    ) -> MasterRecord:
        """Change one section (or ``section.key``) of a record, with its trail entry."""
        _require(actor, reason)
        with self._db.write():
            self._db.lock_trail_head()
            record = self._get(record_id)
            if record.state not in OPEN_STATES:
                raise InvalidUpdate(
                    f"record {record_id} is {record.state.value}; a final record is not edited"
                )
            if field == "ticket.status":
                old, new = self._set_ticket_status(record, value)
            else:
                old, new, updated = _apply(record, field, value)
                if old != new:
                    self._save_details(updated)
            if old == new:
                return record
            self._append(record_id, actor, now, field, old, new, reason)
        return self.get_record(record_id)

    def transition(
        self, record_id: str, to_state: str | State, *, actor: str, roles: Iterable[str],
        reason: str, now: datetime, signatures: Sequence[Signature] = (),
    ) -> MasterRecord:
        """Move a record along its lifecycle; a refusal names what is missing (`lifecycle`)."""
        target = _state(to_state)
        _require(actor, reason)
        with self._db.write():
            self._db.lock_trail_head()
            record = self._get(record_id)
            check_transition(record, target, roles=roles, reason=reason, signatures=signatures)
            self._db.execute(
                "UPDATE records SET state = ?, cancel_reason = ? WHERE id = ?",
                (target.value, reason if target is State.CANCELLED else "", record_id),
            )
            writer = self._writer()
            at = iso(now)
            writer.append(
                record_id, actor, at, "state", canonical_json(record.state.value),
                canonical_json(target.value), reason,
            )
            self._sign(record, target, signatures, writer, actor, at)
            if target not in OPEN_STATES:
                old, new = self._set_ticket_status(record, target.value)
                writer.append(record_id, actor, at, "ticket.status", old, new,
                              f"record {target.value}: {reason}")
            self._db.executemany(INSERT_SQL, writer.rows)
        return self.get_record(record_id)

    def _sign(
        self, record: MasterRecord, target: State, signatures: Sequence[Signature],
        writer: TrailWriter, actor: str, at: str,
    ) -> None:
        if (record.state, target) not in SIGNED:
            return
        start = len(record.signatures)
        rows = []
        for offset, sig in enumerate(signatures):
            rows.append(
                (record.id, start + offset, sig.printed_name, sig.role.value, sig.meaning, at)
            )
            body = {**sig.model_dump(mode="json"), "signed_at": at, "transition": target.value}
            new = canonical_json(body)
            writer.append(record.id, actor, at, "signature", None, new, sig.meaning)
        self._db.executemany(
            "INSERT INTO signatures (record_id, position, printed_name, role, meaning, signed_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )

    def _set_ticket_status(self, record: MasterRecord, status: Any) -> tuple[str, str]:
        if status not in TICKET_STATUSES:
            raise InvalidUpdate(
                f"field 'ticket.status': {status!r} is not one of {', '.join(TICKET_STATUSES)}"
            )
        old = record.ticket.status if record.ticket else "open"
        self._db.execute("UPDATE tickets SET status = ? WHERE id = ?",
                         (status, record.security_ticket))
        return canonical_json(old), canonical_json(status)

    def _save_details(self, record: MasterRecord) -> None:
        details = record.model_dump(mode="json", include=set(_DETAILS))
        self._db.execute(
            "UPDATE records SET details = ?, description = ? WHERE id = ?",
            (canonical_json(details), record.description, record.id),
        )

    def _writer(self) -> TrailWriter:
        last = self._db.query("SELECT seq, hash FROM audit_trail ORDER BY seq DESC LIMIT 1")
        return TrailWriter.starting_at(last[0] if last else None)

    def _append(
        self, record_id: str, actor: str, now: datetime, field: str, old: str, new: str,
        reason: str,
    ) -> None:
        writer = self._writer()
        writer.append(record_id, actor, iso(now), field, old, new, reason)
        self._db.executemany(INSERT_SQL, writer.rows)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(target: str, *, schema: str | None = None) -> RecordStore:
    """Open the records database: a SQLite path, ``sqlite:///abs/path``, or a PostgreSQL DSN."""
    return RecordStore(connect(target, schema=schema))


def _require(actor: str, reason: str) -> None:
    if not actor.strip():
        raise ReasonRequired("every change needs an actor (the person's user name)")
    if not reason.strip():
        raise ReasonRequired("every change after creation needs a reason; pass reason='…'")


def _state(value: str | State) -> State:
    try:
        return State(value)
    except ValueError:
        names = ", ".join(s.value for s in State)
        raise InvalidUpdate(f"unknown state {value!r}; the states are: {names}") from None


def _apply(record: MasterRecord, field: str, value: Any) -> tuple[str, str, MasterRecord]:
    """Validate the change against the model; returns old and new as canonical JSON."""
    section, _, key = field.partition(".")
    if section not in EDITABLE or (key and section in ("description", "affected_lots",
                                                       "capa_actions", "effectiveness_check")):
        raise InvalidUpdate(
            f"field {field!r} cannot be updated; use one of {', '.join(EDITABLE)} "
            "(or log.<key>, impact.<key>, containment.<key>, rca.<key>, ticket.status); "
            "state changes go through transition"
        )
    data = record.model_dump(mode="json")
    target = data[section] if key else data
    name = key or section
    if key and name not in target:
        raise InvalidUpdate(f"field {field!r}: {section} has no key {key!r}; keys: "
                            f"{', '.join(target)}")
    old = canonical_json(target[name])
    target[name] = _jsonable(value)
    try:
        updated = MasterRecord.model_validate(data)
    except ValidationError as exc:
        raise InvalidUpdate(f"field {field!r}: invalid value: {exc}") from exc
    new_data = updated.model_dump(mode="json")
    new = canonical_json(new_data[section][key] if key else new_data[section])
    return old, new, updated


def _jsonable(value: Any) -> Any:
    """Models and dates in, plain JSON values out, so validation sees one shape."""
    return orjson.loads(orjson.dumps(value, default=_dump_model))


def _dump_model(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot store a {type(value).__name__}")
