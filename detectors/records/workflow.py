"""Running one workflow command (`detectors.records.commands`): actor, load, version,
permission, guards, write, trail, all in the caller's write transaction. See `execute`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import Connection, func, insert, select, update

from detectors.records import links
from detectors.records._exceptions import (
    ConcurrentUpdate,
    InvalidUpdate,
    ReasonRequired,
    RecordNotFound,
    SignatureRefused,
    UnknownActor,
)
from detectors.records.commands import (
    REAUTH_WINDOW,
    TICKET_STATUSES,
    Actor,
    AddCapaAction,
    AddComment,
    Command,
    ContributeImpact,
    PlaceHold,
    RecordDecision,
    ReleaseHold,
    SetTicketStatus,
    Sign,
    SignatureRequest,
    Transition,
    UpdateCapaAction,
    UpdateDecision,
    UpdateSection,
)
from detectors.records.lifecycle import (
    SIGNED,
    Gate,
    Signer,
    check_transition,
    signature_refusal,
    signed_step_from,
    step_name,
)
from detectors.records.load import load_records
from detectors.records.models import (
    OPEN_STATES,
    ActionStatus,
    CapaAction,
    Containment,
    ImpactContribution,
    LotHold,
    MasterRecord,
    Signature,
    State,
)
from detectors.records.permissions import Permission, require
from detectors.records.risk import WorkflowSettings
from detectors.records.runs import Change, Run, apply_update, jsonable
from detectors.records.sections import (
    action_row,
    contribution_row,
    decision_row,
    hold_row,
    save_section,
)
from detectors.records.steps import HANDLERS as STEP_HANDLERS
from detectors.records.steps import require_gate
from detectors.records.tables import (
    audit_trail,
    capa_actions,
    containment_decisions,
    impact_contributions,
    lot_holds,
    records,
    signatures,
    tickets,
    users,
)
from detectors.records.trail import TrailWriter, append_rows, canonical_json, iso

# --- running one ------------------------------------------------------------------------------


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


# --- the handlers: guards, writes, trail changes ------------------------------------------------


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


def _comment(run: Run, cmd: AddComment) -> list[Change]:
    return [Change("comment", None, canonical_json(cmd.reason.strip()), cmd.reason)]


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


def _ticket_status(run: Run, cmd: SetTicketStatus) -> list[Change]:
    old, new = _set_ticket_status(run, cmd.status)
    return [] if old == new else [Change("ticket.status", old, new, cmd.reason)]


#: Sections written only through their typed commands: a whole-section write would skip
#: their guards (a CAPA action created already done, a contribution in another's name).
_TYPED_SECTIONS = {
    "impact": "AssessImpact (the summary), ContributeImpact (one function's contribution) "
              "or DecideNotification (a notification decision)",
    "rca": "RecordRootCause (the root cause analysis)",
    "capa_actions": "AddCapaAction, UpdateCapaAction, MoveCapaDue or CheckEffectiveness",
    "effectiveness_check": "CheckEffectiveness (the record's check, performed by you)",
}


#: Keys of a section written only through their typed commands: each stamps or checks who
#: (a contribution is its author's, a notification decision is stamped with who decided, the
#: root cause's validators must be enabled users, a CAPA action keeps its own guards).
_TYPED_KEYS = {
    "impact.contributions": "ContributeImpact (one function's contribution, in your name)",
    "impact.notifications": "DecideNotification (a notification decision, in your name)",
    "rca.validated_by": "RecordRootCause (validated_by must name enabled users)",
    "containment.lot_holds": "PlaceHold or ReleaseHold (a lot held or released in your name)",
    "containment.decisions": "RecordDecision or UpdateDecision (a decision recorded in your "
                             "name)",
}

#: Keys of ``containment`` that a whole-section write must leave as they are (see `_TYPED_KEYS`).
_CONTAINMENT_TYPED = ("lot_holds", "decisions")


def _refuse_typed(field: str) -> None:
    section = field.partition(".")[0]
    if field in _TYPED_SECTIONS:
        raise InvalidUpdate(f"field {field!r}: the whole section is not written by "
                            f"UpdateSection (it would bypass its guards); use "
                            f"{_TYPED_SECTIONS[field]}")
    if field in _TYPED_KEYS or section == "capa_actions":
        use = _TYPED_KEYS.get(field) or _TYPED_SECTIONS["capa_actions"]
        raise InvalidUpdate(f"field {field!r} is not written by UpdateSection (it would "
                            f"bypass its guards); use {use}")


def _update_section(run: Run, cmd: UpdateSection) -> list[Change]:
    _refuse_typed(cmd.field)
    if cmd.field == "ticket.status":
        return _ticket_status(run, SetTicketStatus(record_id=cmd.record_id, reason=cmd.reason,
                                                   status=cmd.value))
    old, new, updated = apply_update(run.record, cmd.field, cmd.value)
    if old == new:
        return []
    if cmd.field == "containment":
        _refuse_typed_containment(run.record.containment, updated.containment)
    if cmd.field in _CONTAINMENT_DECISIONS:
        require_gate(run, Gate.CONTAINMENT_DECISION, f"changing {cmd.field}")
    save_section(run.conn, updated, cmd.field.partition(".")[0])
    return [Change(cmd.field, old, new, cmd.reason)]


#: Section updates that are containment decisions (guarded like `PlaceHold`, `RecordDecision`).
_CONTAINMENT_DECISIONS = ("containment", "containment.release_freeze")


def _refuse_typed_containment(before: Containment, after: Containment) -> None:
    """A whole ``containment`` write that would add, drop or rewrite a lot hold or a decision
    is refused: holds and decisions carry who placed or decided them, stamped by their own
    commands; a whole-section write would name anyone (or wipe them)."""
    for key in _CONTAINMENT_TYPED:
        if getattr(before, key) != getattr(after, key):
            raise InvalidUpdate(
                f"field 'containment': it would change containment.{key}, which is not written "
                f"by UpdateSection; use {_TYPED_KEYS['containment.' + key]}, and write the "
                f"other keys one at a time (containment.<key>) or keep {key} as it is")


def _dumped(items: Sequence[Any]) -> list[Any]:
    return [item.model_dump(mode="json") for item in items]


def _place_hold(run: Run, cmd: PlaceHold) -> list[Change]:
    require_gate(run, Gate.CONTAINMENT_DECISION, f"holding lot {cmd.lot_id!r}")
    holds = run.record.containment.lot_holds
    if any(h.lot_id == cmd.lot_id and h.released_at is None for h in holds):
        raise InvalidUpdate(f"lot {cmd.lot_id!r} is already on hold on record {run.record.id}")
    hold = LotHold(lot_id=cmd.lot_id, held_at=cmd.held_at or run.now, held_by=run.actor.user_id)
    row = hold.model_dump(mode="json")
    run.conn.execute(insert(lot_holds), [hold_row(run.record.id, len(holds), row)])
    old = _dumped(holds)
    return [Change("containment.lot_holds", canonical_json(old), canonical_json([*old, row]),
                   cmd.reason)]


def _release_hold(run: Run, cmd: ReleaseHold) -> list[Change]:
    holds = run.record.containment.lot_holds
    if not any(h.lot_id == cmd.lot_id and h.released_at is None for h in holds):
        held = sorted({h.lot_id for h in holds if h.released_at is None})
        raise InvalidUpdate(f"lot {cmd.lot_id!r} is not on hold on record {run.record.id} "
                            f"(on hold: {', '.join(held) or 'none'})")
    old = _dumped(holds)
    new = _dumped([
        h.model_copy(update={"released_at": run.now, "released_by": run.actor.user_id})
        if h.lot_id == cmd.lot_id and h.released_at is None else h
        for h in holds
    ])
    t = lot_holds
    for position, (before, after) in enumerate(zip(old, new, strict=True)):
        if before != after:
            run.conn.execute(update(t).where(t.c.record_id == run.record.id,
                                             t.c.position == position)
                             .values(released_at=after["released_at"],
                                     released_by=after["released_by"]))
    return [Change("containment.lot_holds", canonical_json(old), canonical_json(new),
                   cmd.reason)]


def _record_decision(run: Run, cmd: RecordDecision) -> list[Change]:
    require_gate(run, Gate.CONTAINMENT_DECISION,
                 f"a containment decision ({cmd.decision.kind.value})")
    decisions = run.record.containment.decisions
    named = cmd.decision.decided_by
    if named not in (None, "", run.actor.user_id):
        raise InvalidUpdate(f"decision.decided_by {named!r}: a containment decision is recorded "
                            f"in the name of who records it ({run.actor.user_id}); leave "
                            "decided_by out (otwatch sets it)")
    decision = cmd.decision.model_copy(update={
        "decided_at": cmd.decision.decided_at or run.now,
        "decided_by": run.actor.user_id,
    })
    row = decision.model_dump(mode="json")
    run.conn.execute(insert(containment_decisions),
                     [decision_row(run.record.id, len(decisions), row)])
    old = _dumped(decisions)
    return [Change("containment.decisions", canonical_json(old), canonical_json([*old, row]),
                   cmd.reason)]


def _update_decision(run: Run, cmd: UpdateDecision) -> list[Change]:
    decisions = run.record.containment.decisions
    if not 0 <= cmd.index < len(decisions):
        raise InvalidUpdate(f"record {run.record.id} has no containment decision {cmd.index} "
                            f"(it has {len(decisions)}, numbered from 0)")
    old = _dumped(decisions)
    changed = {"status": cmd.status, **({} if cmd.note is None else {"note": cmd.note})}
    after = decisions[cmd.index].model_copy(update=changed).model_dump(mode="json")
    if after == old[cmd.index]:
        return []
    t = containment_decisions
    run.conn.execute(update(t).where(t.c.record_id == run.record.id, t.c.position == cmd.index)
                     .values(status=after["status"], note=after["note"]))
    new = [*old[: cmd.index], after, *old[cmd.index + 1 :]]
    return [Change("containment.decisions", canonical_json(old), canonical_json(new),
                   cmd.reason)]


def _contribute_impact(run: Run, cmd: ContributeImpact) -> list[Change]:
    contributions = run.record.impact.contributions
    rating = cmd.rating
    if rating is not None:
        level = run.settings.risk_matrix.level(rating.severity, rating.likelihood)
        rating = rating.model_copy(update={"level": level})
    try:
        mine = ImpactContribution(function=cmd.function, author=run.actor.user_id,
                                  assessment=cmd.assessment, risk=cmd.risk,
                                  signed_off=cmd.signed_off, updated_at=run.now, rating=rating)
    except ValidationError as exc:
        raise InvalidUpdate(f"impact contribution: invalid value: {exc}") from exc
    row = mine.model_dump(mode="json")
    old = _dumped(contributions)
    kept = [c for c in old if c["function"] != cmd.function]
    new = sorted([*kept, row], key=lambda c: str(c["function"]))
    t = impact_contributions
    run.conn.execute(t.delete().where(t.c.record_id == run.record.id,
                                      t.c.function == cmd.function))
    run.conn.execute(insert(t), [contribution_row(run.record.id, row)])
    return [Change("impact.contributions", canonical_json(old), canonical_json(new),
                   cmd.reason)]


def _add_capa(run: Run, cmd: AddCapaAction) -> list[Change]:
    actions = run.record.capa_actions
    if any(a.id == cmd.action.id for a in actions):
        raise InvalidUpdate(f"record {run.record.id} already has CAPA action {cmd.action.id!r}; "
                            "change it with UpdateCapaAction")
    _check_new_action(cmd.action)
    row = cmd.action.model_dump(mode="json")
    run.conn.execute(insert(capa_actions), [action_row(run.record.id, len(actions), row)])
    old = _dumped(actions)
    return [Change("capa_actions", canonical_json(old), canonical_json([*old, row]), cmd.reason)]


#: CAPA action fields with a step of their own (a due date moves with a reason and an approver;
#: an effectiveness check is dated and attributed by the workflow).
_OWN_STEPS = {
    "original_due": "nothing: the original due date is kept as it was planned",
    "current_due": "MoveCapaDue (move-due: a reason and an approver)",
    "due_changes": "MoveCapaDue (move-due)",
    "effectiveness_check": "CheckEffectiveness (check-effectiveness --action)",
}


def _check_new_action(action: CapaAction) -> None:
    """A new action starts open, with its due date as planned and nothing checked yet."""
    wrong = []
    if action.status is not ActionStatus.OPEN:
        wrong.append(f"status {action.status.value!r} (a new action is open)")
    if action.current_due != action.original_due:
        wrong.append("current_due differs from original_due (move it later with MoveCapaDue)")
    if action.due_changes:
        wrong.append("due_changes (moves are recorded by MoveCapaDue)")
    if action.effectiveness_check is not None:
        wrong.append("an effectiveness check (checked once done, by CheckEffectiveness)")
    if wrong:
        raise InvalidUpdate(f"new CAPA action {action.id!r} cannot have: " + "; ".join(wrong))


def _update_capa(run: Run, cmd: UpdateCapaAction) -> list[Change]:
    actions = run.record.capa_actions
    position = next((n for n, a in enumerate(actions) if a.id == cmd.action_id), None)
    if position is None:
        known = ", ".join(a.id for a in actions) or "none"
        raise InvalidUpdate(f"record {run.record.id} has no CAPA action {cmd.action_id!r} "
                            f"(actions: {known})")
    if "id" in cmd.changes:
        raise InvalidUpdate("a CAPA action keeps its id; add a new action instead")
    own_steps = sorted(set(cmd.changes) & set(_OWN_STEPS))
    if own_steps:
        raise InvalidUpdate("; ".join(f"CAPA action field {name!r} changes only through "
                                      f"{_OWN_STEPS[name]}" for name in own_steps))
    old = _dumped(actions)
    try:
        after = CapaAction.model_validate({**old[position], **jsonable(dict(cmd.changes))})
    except ValidationError as exc:
        raise InvalidUpdate(f"CAPA action {cmd.action_id!r}: invalid value: {exc}") from exc
    row = after.model_dump(mode="json")
    if row == old[position]:
        return []
    values = action_row(run.record.id, position, row)
    t = capa_actions
    run.conn.execute(update(t).where(t.c.record_id == run.record.id, t.c.position == position)
                     .values({k: v for k, v in values.items()
                              if k not in ("record_id", "position")}))
    new = [*old[:position], row, *old[position + 1 :]]
    return [Change("capa_actions", canonical_json(old), canonical_json(new), cmd.reason)]


def _linked(handler: Callable[..., list[links.TrailChange]]) -> Callable[[Run, Any], list[Change]]:
    """A `detectors.records.links` handler as a workflow handler."""
    def run_link(run: Run, cmd: Any) -> list[Change]:
        return [Change(*c) for c in handler(run.conn, run.record, run.actor, run.at, cmd)]
    return run_link


_HANDLERS: dict[type[Command], Callable[[Run, Any], list[Change]]] = {
    Transition: _transition,
    UpdateSection: _update_section,
    PlaceHold: _place_hold,
    ReleaseHold: _release_hold,
    RecordDecision: _record_decision,
    UpdateDecision: _update_decision,
    ContributeImpact: _contribute_impact,
    AddCapaAction: _add_capa,
    UpdateCapaAction: _update_capa,
    SetTicketStatus: _ticket_status,
    Sign: _sign,
    links.LinkTicket: _linked(links.link_ticket),
    links.ReportTicketState: _linked(links.report_ticket_state),
    links.AddExternalReference: _linked(links.add_external_reference),
    AddComment: _comment,
    **STEP_HANDLERS,
}


