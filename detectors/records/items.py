"""Handlers that add or change one item of a record's lists: a lot hold, a containment
decision (`commands.PlaceHold` … `UpdateDecision`), an impact contribution
(`ContributeImpact`), a CAPA action (`AddCapaAction`, `UpdateCapaAction`).

Each item is stamped with who placed, decided or wrote it (never a name from the request) and
checked on its own; the item's row is written, and the trail entry carries the whole list
before and after. `workflow.execute` runs each handler in the command's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import insert, update

from detectors.records._exceptions import InvalidUpdate
from detectors.records.commands import (
    AddCapaAction,
    Command,
    ContributeImpact,
    PlaceHold,
    RecordDecision,
    ReleaseHold,
    UpdateCapaAction,
    UpdateDecision,
)
from detectors.records.lifecycle import Gate
from detectors.records.models import ActionStatus, CapaAction, ImpactContribution, LotHold
from detectors.records.runs import Change, Run, jsonable
from detectors.records.sections import action_row, contribution_row, decision_row, hold_row
from detectors.records.steps import require_gate
from detectors.records.tables import (
    capa_actions,
    containment_decisions,
    impact_contributions,
    lot_holds,
)
from detectors.records.trail import canonical_json


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


HANDLERS: dict[type[Command], Callable[[Run, Any], list[Change]]] = {
    PlaceHold: _place_hold,
    ReleaseHold: _release_hold,
    RecordDecision: _record_decision,
    UpdateDecision: _update_decision,
    ContributeImpact: _contribute_impact,
    AddCapaAction: _add_capa,
    UpdateCapaAction: _update_capa,
}
