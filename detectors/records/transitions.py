"""Handlers that move a record between states and sign it (`commands.Transition`, `Sign`),
and the linked ticket's status (`SetTicketStatus`), which a final state sets too.

The rules (who may move a record where, which signatures a step needs, from whom) are the
pure guards of `detectors.records.lifecycle`; here they are applied to the record as stored,
and the state, the signature rows and the ticket are written. `workflow.execute` runs each
handler in the command's transaction, after the actor, version and permission checks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from detectors.records._exceptions import InvalidUpdate, SignatureRefused
from detectors.records.commands import (
    REAUTH_WINDOW,
    TICKET_STATUSES,
    Command,
    SetTicketStatus,
    Sign,
    SignatureRequest,
    Transition,
)
from detectors.records.lifecycle import (
    SIGNED,
    Signer,
    check_transition,
    signature_refusal,
    signed_step_from,
    step_name,
)
from detectors.records.models import OPEN_STATES, MasterRecord, Signature, State
from detectors.records.permissions import Permission, require
from detectors.records.runs import Change, Run
from detectors.records.tables import audit_trail, records, signatures, tickets
from detectors.records.trail import canonical_json


def _transition(run: Run, cmd: Transition) -> list[Change]:
    record, conn, target = run.record, run.conn, cmd.to
    given = given_signatures(conn, record)
    changes: list[Change] = []
    if cmd.signature is not None:
        if (record.state, target) not in SIGNED:
            raise SignatureRefused(
                f"moving record {record.id} from {record.state.value!r} to {target.value!r} "
                "needs no signature; nothing was signed or changed (leave the signature out)")
        signed, change = _signature(run, cmd.signature, cmd.reason, given)
        given, changes = [*given, signed], [change]
    check_transition(record, target, roles=run.actor.roles, reason=cmd.reason,
                     signatures=given)
    conn.execute(update(records).where(records.c.id == record.id).values(
        state=target.value, cancel_reason=cmd.reason if target is State.CANCELLED else ""))
    changes.append(Change("state", canonical_json(record.state.value),
                          canonical_json(target.value), cmd.reason))
    if target not in OPEN_STATES and record.security_ticket is not None:  # none: quality-only
        old, new = _set_ticket_status(run, target.value)
        changes.append(Change("ticket.status", old, new, f"record {target.value}: {cmd.reason}"))
    return changes


def given_signatures(conn: Connection, record: MasterRecord) -> list[Signature]:
    """The signatures given for the step that leaves the record's current state, since the
    record last entered it (a rework loop asks for new ones)."""
    step = signed_step_from(record.state)
    if step is None:
        return []
    t = audit_trail
    entered = conn.execute(select(func.max(t.c.seq)).where(
        t.c.record_id == record.id, t.c.field == "state")).scalar() or 0
    return [s for s in record.signatures
            if s.step == step_name(step) and (s.trail_seq or 0) > entered]


def _sign(run: Run, cmd: Sign) -> list[Change]:
    _, change = _signature(run, cmd.signature, cmd.reason, given_signatures(run.conn, run.record))
    return [change]


def _signature(
    run: Run, request: SignatureRequest, reason: str, given: Sequence[Signature]
) -> tuple[Signature, Change]:
    """Check one signature as it is given (21 CFR 11.50, 11.200) and make its trail entry;
    the ``signatures`` row is written once the entry has its seq."""
    actor, record = run.actor, run.record
    require(actor.user_id, actor.roles, Permission.SIGN)
    proof = request.reauthenticated
    if proof.user_id != actor.user_id:
        raise SignatureRefused(f"the password was re-entered by {proof.user_id!r}, not by "
                               f"the signer {actor.user_id!r}")
    if not timedelta(seconds=-5) <= run.now - proof.at <= REAUTH_WINDOW:
        raise SignatureRefused("enter your password again to sign: the last entry is older "
                               f"than {int(REAUTH_WINDOW.total_seconds() // 60)} minutes")
    why = signature_refusal(record, Signer(actor.user_id, actor.roles), request.role,
                            request.meaning, given)
    if why:
        raise SignatureRefused(why)
    step = signed_step_from(record.state)
    assert step is not None  # signature_refusal said so
    signed = Signature(printed_name=actor.printed_name, user_id=actor.user_id,
                       role=request.role, meaning=request.meaning.strip(), signed_at=run.now,
                       step=step_name(step))
    body = {"record_id": record.id, **signed.model_dump(mode="json", exclude={"trail_seq"}),
            "signed_at": run.at, "reauthenticated_by": proof.method}
    position = len(record.signatures)

    def write_row(seq: int) -> None:
        run.conn.execute(insert(signatures), [{
            "record_id": record.id, "position": position, "printed_name": signed.printed_name,
            "role": signed.role.value, "meaning": signed.meaning, "signed_at": run.at,
            "user_id": signed.user_id, "step": signed.step, "trail_seq": seq}])

    change = Change("signature", None, canonical_json(body), reason, bind=write_row)
    return signed, change


def _set_ticket_status(run: Run, status: Any) -> tuple[str, str]:
    if status not in TICKET_STATUSES:
        raise InvalidUpdate(
            f"field 'ticket.status': {status!r} is not one of {', '.join(TICKET_STATUSES)}"
        )
    if run.record.security_ticket is None:
        raise InvalidUpdate(
            f"field 'ticket.status': record {run.record.id} is quality-only and has no "
            "security ticket (one opens when security evidence joins it)")
    old = run.record.ticket.status if run.record.ticket else "open"
    run.conn.execute(update(tickets).where(tickets.c.id == run.record.security_ticket)
                     .values(status=status))
    return canonical_json(old), canonical_json(status)


def ticket_status(run: Run, cmd: SetTicketStatus) -> list[Change]:
    old, new = _set_ticket_status(run, cmd.status)
    return [] if old == new else [Change("ticket.status", old, new, cmd.reason)]


HANDLERS: dict[type[Command], Callable[[Run, Any], list[Change]]] = {
    Transition: _transition,
    SetTicketStatus: ticket_status,
    Sign: _sign,
}
