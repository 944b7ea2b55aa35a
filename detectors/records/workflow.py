"""Running one workflow command (`detectors.records.commands`): actor, load, version,
permission, guards, write, trail, all in the caller's write transaction. See `execute`.

The handlers, one per command, live by what they do: `transitions` (state, signatures, the
linked ticket's status), `edits` (a section, a comment), `items` (lot holds, containment
decisions, impact contributions, CAPA actions), `steps` (the joint procedure's steps) and
`links` (tickets and external references); `_HANDLERS` maps each command to its handler.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, select, update

from detectors.records import edits, items, links, transitions
from detectors.records._exceptions import (
    ConcurrentUpdate,
    InvalidUpdate,
    ReasonRequired,
    RecordNotFound,
    UnknownActor,
)
from detectors.records.commands import Actor, Command, Transition
from detectors.records.load import load_records
from detectors.records.models import OPEN_STATES, MasterRecord
from detectors.records.permissions import Permission, require
from detectors.records.risk import WorkflowSettings
from detectors.records.runs import Change, Run
from detectors.records.steps import HANDLERS as STEP_HANDLERS
from detectors.records.tables import records, users
from detectors.records.trail import TrailWriter, append_rows, iso


def execute(conn: Connection, command: Command, *, actor: Actor, now: datetime,
            settings: WorkflowSettings | None = None) -> MasterRecord:
    """Run ``command`` inside the caller's write transaction (trail head already locked);
    returns the record as it is afterwards. The actor must be an enabled user; the roles
    checked are the ones the users table holds now, whatever the caller passed."""
    _require(actor.user_id, command.reason)
    actor = current_user(conn, actor)
    record = load_record(conn, command.record_id)
    if command.expected_version is not None and command.expected_version != record.version:
        raise ConcurrentUpdate(record.id, command.expected_version, record.version)
    if not isinstance(command, Transition):
        require(actor.user_id, actor.roles, command.permission)
        # A linked ticket's state is recorded on a closed record too (ids stay linked).
        if record.state not in OPEN_STATES and command.permission is not Permission.SYNC_TICKETS:
            raise InvalidUpdate(
                f"record {record.id} is {record.state.value}; a final record is not edited"
            )
    run = Run(conn, record, actor, iso(now), now, settings or WorkflowSettings())
    changes = _HANDLERS[type(command)](run, command)
    if not changes:
        return record
    conn.execute(
        update(records).where(records.c.id == record.id, records.c.version == record.version)
        .values(version=record.version + 1)
    )
    writer = TrailWriter.at_head(conn)
    for change in changes:
        writer.append(record.id, actor.user_id, run.at, change.field, change.old, change.new,
                      change.reason)
    append_rows(conn, writer)
    first = writer.seq - len(changes) + 1
    for seq, change in enumerate(changes, start=first):
        if change.bind is not None:
            change.bind(seq)
    return load_record(conn, record.id)


def current_user(conn: Connection, actor: Actor) -> Actor:
    """The actor as the users table holds them now: enabled, with today's roles."""
    row = conn.execute(select(users.c.printed_name, users.c.roles, users.c.disabled)
                       .where(users.c.user_id == actor.user_id)).first()
    if row is None:
        raise UnknownActor(actor.user_id, "there is no such user (otwatch-records users add)")
    if row.disabled:
        raise UnknownActor(actor.user_id, "the account is disabled")
    return Actor(actor.user_id, orjson.loads(row.roles), row.printed_name)


def load_record(conn: Connection, record_id: str) -> MasterRecord:
    found = load_records(conn, record_id)
    if not found:
        raise RecordNotFound(record_id)
    return found[0]


def _require(actor: str, reason: str) -> None:
    if not actor.strip():
        raise ReasonRequired("every change needs an actor (the signed-in user)")
    if not reason.strip():
        raise ReasonRequired("every change after creation needs a reason; pass reason='…'")


def _linked(handler: Callable[..., list[links.TrailChange]]) -> Callable[[Run, Any], list[Change]]:
    """A `detectors.records.links` handler as a workflow handler."""
    def run_link(run: Run, cmd: Any) -> list[Change]:
        return [Change(*c) for c in handler(run.conn, run.record, run.actor, run.at, cmd)]
    return run_link


_HANDLERS: dict[type[Command], Callable[[Run, Any], list[Change]]] = {
    **transitions.HANDLERS,
    **edits.HANDLERS,
    **items.HANDLERS,
    links.LinkTicket: _linked(links.link_ticket),
    links.ReportTicketState: _linked(links.report_ticket_state),
    links.AddExternalReference: _linked(links.add_external_reference),
    **STEP_HANDLERS,
}
