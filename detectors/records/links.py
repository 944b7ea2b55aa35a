"""Links from a master record to the outside: tickets in external tools and references to
deviation reports, risk assessments, change controls and QMS records.

Two trail actions, each carrying the full new value (a verifier replays them):

- ``external_ticket``: old and new are the whole ticket row of one system
  (``{"system", "remote_id", "key", "url", "state", "assignee"}``), the old one null when the
  ticket is first linked. Written by `LinkTicket` (the ticket outbox, as the connector's service
  user, once the remote tool answered) and `ReportTicketState` (the inbound webhook, as the
  same service user, the remote actor named in the reason and in ``reported_by``).
- ``external_refs``: old and new are the whole list of references of the record
  (``{"kind", "system", "ref_id", "url", "added_at", "added_by"}``), written by
  `AddExternalReference`.

The outbox's delivery status (``attempts``, ``last_error`` in ``external_tickets``) is
operational and not audited: it changes with every retry and says nothing about the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

from sqlalchemy import Connection, insert, select, update

from detectors.records._exceptions import InvalidUpdate
from detectors.records.commands import Actor, Command
from detectors.records.models import MasterRecord
from detectors.records.permissions import Permission
from detectors.records.tables import external_refs, external_tickets
from detectors.records.trail import canonical_json, iso

#: The ticket systems a record can be linked with (one connector each).
TICKET_SYSTEMS = ("webhook", "thehive", "servicenow", "jira")
#: What an external reference points at.
REFERENCE_KINDS = ("deviation", "risk_assessment", "change_control", "qms_record")
TICKET_FIELDS = ("system", "remote_id", "key", "url", "state", "assignee")

#: (field, old, new, reason): one trail entry for `detectors.records.workflow`.
TrailChange = tuple[str, str | None, str | None, str]


@dataclass(frozen=True, kw_only=True)
class LinkTicket(Command):
    """Record the remote ticket a connector created (or found) for the record."""

    system: str
    remote_id: str
    key: str = ""
    url: str = ""
    state: str = ""
    permission: ClassVar[Permission] = Permission.SYNC_TICKETS


@dataclass(frozen=True, kw_only=True)
class ReportTicketState(Command):
    """The remote tool reports its ticket's state and assignee (inbound webhook)."""

    system: str
    state: str | None = None
    assignee: str | None = None
    reported_by: str
    permission: ClassVar[Permission] = Permission.SYNC_TICKETS


@dataclass(frozen=True, kw_only=True)
class AddExternalReference(Command):
    """Refer the record to a deviation report, risk assessment, change control or QMS record."""

    kind: Literal["deviation", "risk_assessment", "change_control", "qms_record"]
    system: str
    ref_id: str
    url: str = ""
    permission: ClassVar[Permission] = Permission.EDIT_SECTIONS


def ticket_rows(conn: Connection, record_id: str) -> list[dict[str, Any]]:
    """Every linked ticket of a record, with its delivery status, by system."""
    query = (select(external_tickets).where(external_tickets.c.record_id == record_id)
             .order_by(external_tickets.c.system))
    # str(): a reserved word ("key") comes back as SQLAlchemy's quoted_name, a str subclass
    # that JSON encoders refuse as a dict key.
    return [{str(k): v for k, v in row._mapping.items()} for row in conn.execute(query)]


def reference_rows(conn: Connection, record_id: str) -> list[dict[str, Any]]:
    query = (select(external_refs).where(external_refs.c.record_id == record_id)
             .order_by(external_refs.c.position))
    return [{str(k): v for k, v in row._mapping.items() if k not in ("record_id", "position")}
            for row in conn.execute(query)]


def _public(row: dict[str, Any] | None) -> dict[str, str] | None:
    return None if row is None else {k: str(row[k]) for k in TICKET_FIELDS}


def _existing(conn: Connection, record_id: str, system: str) -> dict[str, Any] | None:
    row = conn.execute(select(external_tickets).where(
        external_tickets.c.record_id == record_id, external_tickets.c.system == system)).first()
    return None if row is None else {str(k): v for k, v in row._mapping.items()}


def _check_system(system: str) -> None:
    if system not in TICKET_SYSTEMS:
        raise InvalidUpdate(f"ticket system {system!r} is not one of {', '.join(TICKET_SYSTEMS)}")


def save_ticket(conn: Connection, record_id: str, values: dict[str, Any], at: str) -> None:
    """Insert or update one ``external_tickets`` row (inside the caller's transaction)."""
    system = values["system"]
    if _existing(conn, record_id, system) is None:
        conn.execute(insert(external_tickets).values(record_id=record_id, updated_at=at,
                                                     **values))
    else:
        conn.execute(update(external_tickets).where(
            external_tickets.c.record_id == record_id, external_tickets.c.system == system,
        ).values(updated_at=at, **{k: v for k, v in values.items() if k != "system"}))


def link_ticket(
    conn: Connection, record: MasterRecord, actor: Actor, at: str, cmd: LinkTicket
) -> list[TrailChange]:
    _check_system(cmd.system)
    before = _existing(conn, record.id, cmd.system)
    row = {"system": cmd.system, "remote_id": cmd.remote_id, "key": cmd.key, "url": cmd.url,
           "state": cmd.state or (before or {}).get("state", ""),
           "assignee": (before or {}).get("assignee", "")}
    if not cmd.remote_id.strip():
        raise InvalidUpdate("a linked ticket needs the remote tool's id ('remote_id')")
    if _public(before) == _public(row):
        return []
    save_ticket(conn, record.id, {**row, "last_error": ""}, at)
    return [("external_ticket", _json(_public(before)), canonical_json(row), cmd.reason)]


def report_ticket_state(
    conn: Connection, record: MasterRecord, actor: Actor, at: str, cmd: ReportTicketState
) -> list[TrailChange]:
    _check_system(cmd.system)
    before = _existing(conn, record.id, cmd.system)
    if before is None:
        raise InvalidUpdate(f"record {record.id} has no {cmd.system} ticket to report on")
    row = {k: str(before[k]) for k in TICKET_FIELDS}
    if cmd.state is not None:
        row["state"] = cmd.state
    if cmd.assignee is not None:
        row["assignee"] = cmd.assignee
    if row == _public(before):
        return []
    save_ticket(conn, record.id, row, at)
    new = {**row, "reported_by": cmd.reported_by}
    return [("external_ticket", _json(_public(before)), canonical_json(new),
             f"{cmd.reason} (reported by {cmd.reported_by} in {cmd.system})")]


def add_external_reference(
    conn: Connection, record: MasterRecord, actor: Actor, at: str, cmd: AddExternalReference
) -> list[TrailChange]:
    if cmd.kind not in REFERENCE_KINDS:
        raise InvalidUpdate(f"reference kind {cmd.kind!r} is not one of "
                            f"{', '.join(REFERENCE_KINDS)}")
    if not cmd.system.strip() or not cmd.ref_id.strip():
        raise InvalidUpdate("an external reference needs its 'system' and its 'ref_id'")
    if cmd.url and not cmd.url.startswith(("https://", "http://")):
        raise InvalidUpdate(f"reference url {cmd.url!r} is not an http(s) URL")
    before = reference_rows(conn, record.id)
    if any(r["kind"] == cmd.kind and r["system"] == cmd.system and r["ref_id"] == cmd.ref_id
           for r in before):
        raise InvalidUpdate(f"record {record.id} already refers to {cmd.kind} "
                            f"{cmd.system}:{cmd.ref_id}")
    row = {"kind": cmd.kind, "system": cmd.system.strip(), "ref_id": cmd.ref_id.strip(),
           "url": cmd.url, "added_at": at, "added_by": actor.user_id}
    conn.execute(insert(external_refs).values(record_id=record.id, position=len(before), **row))
    return [("external_refs", canonical_json(before), canonical_json([*before, row]),
             cmd.reason)]


def note_delivery(conn: Connection, record_id: str, system: str, *, error: str,
                  attempts: int, now: datetime) -> None:
    """The outbox's status for one ticket (not audited: see the module docstring)."""
    at = iso(now)
    if _existing(conn, record_id, system) is None:
        conn.execute(insert(external_tickets).values(
            record_id=record_id, system=system, last_error=error, attempts=attempts,
            updated_at=at, state="pending"))
    else:
        conn.execute(update(external_tickets).where(
            external_tickets.c.record_id == record_id, external_tickets.c.system == system,
        ).values(last_error=error, attempts=attempts, updated_at=at))


def _json(value: Any) -> str | None:
    return None if value is None else canonical_json(value)
