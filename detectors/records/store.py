"""`RecordStore`: the master records on SQLite or PostgreSQL, with the same schema and behaviour.

Example::

    >>> store = open_store("records.db")
    >>> store.migrate()
    >>> outcomes = store.record_events([(event, classification)], now=now)
    >>> store.get_record(outcomes[0].record_id).security_ticket
    'SEC-2026-000001'
    >>> store.execute(PlaceHold(record_id=rid, lot_id="LOT-7", reason="hold"),
    ...               actor=signed_in_user, now=now)   # an Actor from detectors.identity
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from detectors.records import kpis as kpi_math
from detectors.records import links
from detectors.records import migrate as migrations
from detectors.records._exceptions import InvalidUpdate, RecordsError
from detectors.records.attachments import read_with_custody
from detectors.records.commands import (
    EDITABLE,
    TICKET_STATUSES,
    Actor,
    Command,
    SetTicketStatus,
    SignatureRequest,
    Transition,
    UpdateSection,
)
from detectors.records.db import Database, connect
from detectors.records.ingest import Item, record_batch
from detectors.records.load import load_records
from detectors.records.lookback import LookBack, propose_look_back
from detectors.records.lots import affected_lots
from detectors.records.models import (
    AffectedLot,
    Kpis,
    LotHold,
    MasterRecord,
    RecordHeader,
    RecordOutcome,
    State,
    TrailEntry,
    VerifyResult,
)
from detectors.records.report import ManualReport, report_nonconformity
from detectors.records.risk import WorkflowSettings
from detectors.records.signing import signature_problems
from detectors.records.tables import audit_trail, records
from detectors.records.trail import canonical_json, read_entries, verify_entries
from detectors.records.workflow import current_user, execute, load_record

__all__ = ["EDITABLE", "TICKET_STATUSES", "RecordStore", "open_store"]


class RecordStore:
    """One connection to the records database; not shared between threads."""

    def __init__(self, db: Database, settings: WorkflowSettings | None = None) -> None:
        self._db = db
        self.settings = settings or WorkflowSettings()

    @property
    def dialect(self) -> str:
        return self._db.dialect.value

    @property
    def database(self) -> Database:
        """The connection (for the trail relay's cursor and for tests)."""
        return self._db

    def migrate(self) -> list[int]:
        """Bring the schema up to date (idempotent); returns the revisions applied now."""
        return migrations.migrate(self._db)

    def schema_version(self) -> int:
        """The applied schema revision; 0 for a database the store has never migrated."""
        return migrations.schema_version(self._db)

    def record_events(
        self, items: Sequence[Item], *, now: datetime, correlation_window_s: float = 900.0,
        raw: Sequence[bytes] | None = None, burst_window_s: float = 0.0,
    ) -> list[RecordOutcome]:
        """Record one batch of classified events in one transaction; see `ingest`.

        ``burst_window_s`` (the criteria's ``burst.window_s``; 0: never) lets an event that
        was released without a burst join its line's burst record (`detectors.records.ingest`).

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
            return record_batch(self._db, items, now, correlation_window_s, raw, burst_window_s)

    def list_records(self) -> list[MasterRecord]:
        with self._db.read() as conn:
            return load_records(conn)

    def get_record(self, record_id: str) -> MasterRecord:
        with self._db.read() as conn:
            return load_record(conn, record_id)

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
        """Trail entries after ``after_seq``, oldest first: how a relay (containment holds
        to ``otwatch.containment``, the ticket outbox) follows changes without missing any."""
        with self._db.read() as conn:
            return read_entries(conn, audit_trail.c.seq > after_seq, limit=limit)

    def record_headers(self, record_ids: Iterable[str]) -> dict[str, RecordHeader]:
        """The creation facts (ticket, controller, …) of the given records, by id."""
        wanted = sorted(set(record_ids))
        if not wanted:
            return {}
        r = records
        query = select(r.c.id, r.c.security_ticket, r.c.classification, r.c.controller,
                       r.c.tag, r.c.site, r.c.line).where(r.c.id.in_(wanted))
        with self._db.read() as conn:
            return {row.id: RecordHeader(**row._mapping) for row in conn.execute(query)}

    def trail(self, record_id: str | None = None) -> list[TrailEntry]:
        where = () if record_id is None else (audit_trail.c.record_id == record_id,)
        with self._db.read() as conn:
            return read_entries(conn, *where)

    def linked_tickets(self, record_id: str) -> list[dict[str, Any]]:
        """The record's tickets in external tools, with the outbox's delivery status."""
        with self._db.read() as conn:
            return links.ticket_rows(conn, record_id)

    def external_references(self, record_id: str) -> list[dict[str, Any]]:
        """Deviation reports, risk assessments, change controls, QMS records referred to."""
        with self._db.read() as conn:
            return links.reference_rows(conn, record_id)

    def note_delivery(self, record_id: str, system: str, *, error: str, attempts: int,
                      now: datetime) -> None:
        """The ticket outbox's delivery status for one ticket (operational, not audited)."""
        with self._db.write() as conn:
            links.note_delivery(conn, record_id, system, error=error, attempts=attempts,
                                now=now)

    def verify_trail(self) -> VerifyResult:
        """Recompute the hash chain; names the first entry that was edited, moved or removed."""
        return verify_entries(self.trail())

    def verify_signatures(self) -> list[str]:
        """Each signature row against the trail entry that binds it (`signing`); empty: all
        bound. Run after `verify_trail`: it trusts the entries the chain vouches for."""
        with self._db.read() as conn:
            found = load_records(conn)
            trail = read_entries(conn, audit_trail.c.field == "signature")
        return signature_problems({r.id: r.signatures for r in found}, trail)

    def kpis(self, now: datetime) -> Kpis:
        """KPIs from the audit trail only (see `detectors.records.kpis`)."""
        return kpi_math.compute(self.trail(), now)

    def execute(self, command: Command, *, actor: Actor, now: datetime) -> MasterRecord:
        """Run one workflow command in one transaction (see `detectors.records.workflow`)."""
        with self._db.write() as conn:
            self._db.lock_trail_head()
            return execute(conn, command, actor=actor, now=now, settings=self.settings)

    def report(self, report: ManualReport, *, actor: Actor, reason: str,
               now: datetime) -> MasterRecord:
        """Open a record from a report made by hand (`detectors.records.report`)."""
        if not reason.strip():
            raise InvalidUpdate("a report needs a reason (why it is reported)")
        with self._db.write() as conn:
            self._db.lock_trail_head()
            rid = report_nonconformity(conn, report, actor=current_user(conn, actor),
                                       reason=reason, now=now)
            return load_record(conn, rid)

    def download(self, record_id: str, sha256: str, *, actor: Actor, purpose: str,
                 now: datetime) -> tuple[str, str, bytes]:
        """An attachment's (filename, media type, bytes), with its chain-of-custody trail
        entry written first (`detectors.records.attachments`)."""
        with self._db.write() as conn:
            self._db.lock_trail_head()
            user = current_user(conn, actor)
            return read_with_custody(conn, load_record(conn, record_id), sha256, actor=user,
                                     purpose=purpose, now=now)

    def look_back(self, record_id: str) -> LookBack | None:
        """The look-back start otwatch proposes for a record (`detectors.records.lookback`)."""
        record = self.get_record(record_id)
        return propose_look_back(self.list_records(), record.controller, record_id)

    def update_field(
        self, record_id: str, field: str, value: Any, *, actor: Actor, reason: str,
        now: datetime, expected_version: int | None = None,
    ) -> MasterRecord:
        """Change one section (or ``section.key``) of a record, with its trail entry."""
        command: Command
        if field == "ticket.status":
            command = SetTicketStatus(record_id=record_id, reason=reason, status=value,
                                      expected_version=expected_version)
        else:
            command = UpdateSection(record_id=record_id, reason=reason, field=field, value=value,
                                    expected_version=expected_version)
        return self.execute(command, actor=actor, now=now)

    def transition(
        self, record_id: str, to_state: str | State, *, actor: Actor, reason: str,
        now: datetime, signature: SignatureRequest | None = None,
        expected_version: int | None = None,
    ) -> MasterRecord:
        """Move a record along its lifecycle; a refusal names what is missing (`lifecycle`)."""
        command = Transition(record_id=record_id, reason=reason, to=_state(to_state),
                             signature=signature, expected_version=expected_version)
        return self.execute(command, actor=actor, now=now)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(target: str, *, schema: str | None = None,
               settings: WorkflowSettings | None = None) -> RecordStore:
    """Open the records database: a SQLite path, ``sqlite:///abs/path``, or a PostgreSQL DSN;
    ``settings`` are the workflow's (risk matrix, escalation), defaults when None."""
    return RecordStore(connect(target, schema=schema), settings)


def _state(value: str | State) -> State:
    try:
        return State(value)
    except ValueError:
        names = ", ".join(s.value for s in State)
        raise InvalidUpdate(f"unknown state {value!r}; the states are: {names}") from None
