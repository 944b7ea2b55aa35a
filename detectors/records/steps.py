"""Handlers of the joint procedure's steps (`commands.AssignLeads` … `CheckEffectiveness`).

Each handler checks its own inputs, writes the change and returns its trail entries
(`runs.Change`) with the whole new value of every field it changes; `workflow.execute` runs
it in the command's transaction after the actor, version and permission checks. The trail
fields they write, and nothing else:

    lead, co_lead                      the user id
    impact.<key>                       the key's new value (as `UpdateSection` writes it)
    impact.notifications               the whole list of notification decisions
    log.root_cause, rca                the statement; the whole analysis
    containment.<key>                  the key's new value
    capa_actions                       the whole list of CAPA actions
    effectiveness_check                the record's effectiveness check
    attachments                        the whole list of the record's attachments
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import insert, select, update

from detectors.records._exceptions import GuardRefused, InvalidUpdate
from detectors.records.attachments import attachment_row, store_blob
from detectors.records.commands import (
    AssessImpact,
    AssignLeads,
    AttachFile,
    CheckEffectiveness,
    Command,
    DecideNotification,
    MoveCapaDue,
    RecordRootCause,
    SetContainment,
)
from detectors.records.joint import DueDateChange
from detectors.records.lifecycle import Gate, effectiveness_date_problem, missing_at
from detectors.records.models import (
    ActionStatus,
    Attachment,
    CapaAction,
    EffectivenessCheck,
    Role,
)
from detectors.records.runs import Change, Run, apply_update, jsonable
from detectors.records.sections import action_row, save_section
from detectors.records.tables import capa_actions, record_attachments, records, users
from detectors.records.trail import canonical_json


def require_gate(run: Run, gate: Gate, step: str) -> None:
    """Refuse ``step`` with every item `GUARDS` finds missing at ``gate``."""
    missing = missing_at(run.record, gate)
    if missing:
        raise GuardRefused(run.record.id, run.record.state.value, step, missing)


def set_keys(run: Run, values: Mapping[str, Any], reason: str) -> list[Change]:
    """Set ``section.key`` fields (validated against the model), one trail entry per field
    that changes; ``run.record`` follows the changes."""
    changes: list[Change] = []
    for field, value in values.items():
        old, new, updated = apply_update(run.record, field, value)
        if old != new:
            save_section(run.conn, updated, field.partition(".")[0])
            run.record = updated
            changes.append(Change(field, old, new, reason))
    return changes


def _user_roles(run: Run, user_id: str, what: str) -> frozenset[str]:
    row = run.conn.execute(select(users.c.roles, users.c.disabled)
                           .where(users.c.user_id == user_id)).first()
    if row is None or row.disabled:
        raise InvalidUpdate(f"{what}: {user_id!r} is not an enabled user (otwatch-records "
                            "users list shows them)")
    return frozenset(orjson.loads(row.roles))


def _assign_leads(run: Run, cmd: AssignLeads) -> list[Change]:
    for user_id, role, what in ((cmd.lead, Role.QUALITY, "lead"),
                                (cmd.co_lead, Role.SECURITY, "co_lead")):
        if role.value not in _user_roles(run, user_id, what):
            raise InvalidUpdate(f"{what}: {user_id!r} does not hold the {role.value} role "
                                f"(the {what.replace('_', '-')} is from {role.value})")
    changes = []
    for what, user_id in (("lead", cmd.lead), ("co_lead", cmd.co_lead)):
        if getattr(run.record, what) != user_id:
            changes.append(Change(what, canonical_json(getattr(run.record, what)),
                                  canonical_json(user_id), cmd.reason))
    run.conn.execute(update(records).where(records.c.id == run.record.id)
                     .values(lead=cmd.lead, co_lead=cmd.co_lead))
    return changes


def _assess_impact(run: Run, cmd: AssessImpact) -> list[Change]:
    keys = ("product_impact", "data_integrity", "look_back_from", "look_back_basis",
            "systems", "containment_risk")
    given = {f"impact.{k}": getattr(cmd, k) for k in keys if getattr(cmd, k) is not None}
    if not given:
        raise InvalidUpdate("impact: give at least one of " + ", ".join(keys))
    return set_keys(run, given, cmd.reason)


def _decide_notification(run: Run, cmd: DecideNotification) -> list[Change]:
    decision = cmd.decision
    if decision.notify and not (decision.notified_to.strip() and decision.notified_at):
        raise InvalidUpdate(f"notification for the {decision.audience.value}: notify is yes, "
                            "so give notified_to (who) and notified_at (when)")
    decided = decision.model_copy(update={"decided_by": run.actor.user_id,
                                          "decided_at": run.now})
    kept = [n for n in run.record.impact.notifications if n.audience != decision.audience]
    value = sorted([*kept, decided], key=lambda n: n.audience.value)
    return set_keys(run, {"impact.notifications": value}, cmd.reason)


def _record_root_cause(run: Run, cmd: RecordRootCause) -> list[Change]:
    for user_id in cmd.validated_by or []:
        _user_roles(run, user_id, "validated_by")
    rca = run.record.rca.model_copy(update={
        key: value for key, value in (
            ("five_whys", cmd.five_whys), ("fishbone", cmd.fishbone),
            ("security_finding", cmd.security_finding), ("validated_by", cmd.validated_by))
        if value is not None})
    values: dict[str, Any] = {}
    if cmd.root_cause is not None:
        values["log.root_cause"] = cmd.root_cause
    values["rca"] = rca
    return set_keys(run, values, cmd.reason)


def _set_containment(run: Run, cmd: SetContainment) -> list[Change]:
    values: dict[str, Any] = {}
    if cmd.evidence_checklist is not None:
        values["containment.evidence_checklist"] = cmd.evidence_checklist
    if cmd.kept_justification is not None:
        values["containment.kept_justification"] = cmd.kept_justification
    if not values:
        raise InvalidUpdate("containment: give evidence_checklist or kept_justification")
    return set_keys(run, values, cmd.reason)


def save_actions(run: Run, actions: list[CapaAction], position: int, reason: str) -> Change:
    """Write action ``position`` of ``actions`` (the whole new list) and its trail entry."""
    old = [a.model_dump(mode="json") for a in run.record.capa_actions]
    new = [a.model_dump(mode="json") for a in actions]
    values = action_row(run.record.id, position, new[position])
    t = capa_actions
    run.conn.execute(update(t).where(t.c.record_id == run.record.id, t.c.position == position)
                     .values({k: v for k, v in values.items()
                              if k not in ("record_id", "position")}))
    return Change("capa_actions", canonical_json(old), canonical_json(new), reason)


def find_action(run: Run, action_id: str) -> int:
    position = next((n for n, a in enumerate(run.record.capa_actions) if a.id == action_id),
                    None)
    if position is None:
        known = ", ".join(a.id for a in run.record.capa_actions) or "none"
        raise InvalidUpdate(f"record {run.record.id} has no CAPA action {action_id!r} "
                            f"(actions: {known})")
    return position


def _move_due(run: Run, cmd: MoveCapaDue) -> list[Change]:
    position = find_action(run, cmd.action_id)
    if Role.APPROVER.value not in _user_roles(run, cmd.approved_by, "approved_by"):
        raise InvalidUpdate(f"approved_by: {cmd.approved_by!r} does not hold the approver "
                            "role; a due date moves with an approver's consent")
    action = run.record.capa_actions[position]
    if action.current_due == cmd.to_due:
        return []
    moved = DueDateChange(from_due=action.current_due, to_due=cmd.to_due, reason=cmd.reason,
                          approved_by=cmd.approved_by, changed_by=run.actor.user_id,
                          changed_at=run.now)
    after = action.model_copy(update={"current_due": cmd.to_due,
                                      "due_changes": [*action.due_changes, moved]})
    actions = [*run.record.capa_actions]
    actions[position] = after
    return [save_actions(run, actions, position, cmd.reason)]


def _check_effectiveness(run: Run, cmd: CheckEffectiveness) -> list[Change]:
    performed_at = cmd.performed_at or run.now
    problem = effectiveness_date_problem(performed_at, run.record, run.now)
    if problem:
        raise InvalidUpdate(problem)
    if not cmd.against_criteria.strip():
        raise InvalidUpdate("against_criteria: say which success criteria the check was "
                            "made against")
    check = EffectivenessCheck(performed_by=run.actor.user_id, performed_at=performed_at,
                               effective=cmd.effective, against_criteria=cmd.against_criteria,
                               notes=cmd.notes, follow_up_on=cmd.follow_up_on)
    if cmd.action_id is None:
        return set_keys(run, {"effectiveness_check": check}, cmd.reason)
    position = find_action(run, cmd.action_id)
    action = run.record.capa_actions[position]
    if action.status is not ActionStatus.DONE:
        raise InvalidUpdate(f"CAPA action {action.id!r} is {action.status.value}; its "
                            "effectiveness is checked once it is done")
    actions = [*run.record.capa_actions]
    actions[position] = action.model_copy(update={"effectiveness_check": check})
    return [save_actions(run, actions, position, cmd.reason)]


_ITEMS = ("logs", "configuration_snapshot", "batch_records", "other")


def _attach(run: Run, cmd: AttachFile) -> list[Change]:
    if cmd.item not in _ITEMS:
        raise InvalidUpdate(f"attachment item {cmd.item!r}: use one of {', '.join(_ITEMS)}")
    digest = store_blob(run.conn, cmd.content)
    old = [a.model_dump(mode="json") for a in run.record.attachments]
    try:
        made = Attachment(sha256=digest, filename=cmd.filename, media_type=cmd.media_type,
                          item=cmd.item, size=len(cmd.content), attached_by=run.actor.user_id,
                          attached_at=run.now).model_dump(mode="json")
    except ValidationError as exc:
        raise InvalidUpdate(f"attachment: {exc}") from exc
    run.conn.execute(insert(record_attachments),
                     [attachment_row(run.record.id, len(old), made)])
    return [Change("attachments", canonical_json(old), canonical_json([*old, made]),
                   cmd.reason)]


HANDLERS: dict[type[Command], Callable[[Run, Any], list[Change]]] = {
    AttachFile: _attach,
    AssignLeads: _assign_leads,
    AssessImpact: _assess_impact,
    DecideNotification: _decide_notification,
    RecordRootCause: _record_root_cause,
    SetContainment: _set_containment,
    MoveCapaDue: _move_due,
    CheckEffectiveness: _check_effectiveness,
}

__all__ = ["HANDLERS", "jsonable", "require_gate", "set_keys"]
