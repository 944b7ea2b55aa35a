"""Handlers of the free edits: a section or one of its keys (`commands.UpdateSection`) and
a comment (`AddComment`).

A whole-section write would bypass the guards of the typed commands (a CAPA action created
already done, a contribution or a lot hold in another's name), so the sections and keys that
only their own commands write are refused here, each naming the command to use. The value is
checked against the model (`runs.apply_update`) and saved (`sections.save_section`);
`workflow.execute` runs each handler in the command's transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from detectors.records._exceptions import InvalidUpdate
from detectors.records.commands import AddComment, Command, SetTicketStatus, UpdateSection
from detectors.records.lifecycle import Gate
from detectors.records.models import Containment
from detectors.records.runs import Change, Run, apply_update
from detectors.records.sections import save_section
from detectors.records.steps import require_gate
from detectors.records.trail import canonical_json
from detectors.records.transitions import ticket_status


def _comment(run: Run, cmd: AddComment) -> list[Change]:
    return [Change("comment", None, canonical_json(cmd.reason.strip()), cmd.reason)]


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
        return ticket_status(run, SetTicketStatus(record_id=cmd.record_id, reason=cmd.reason,
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


HANDLERS: dict[type[Command], Callable[[Run, Any], list[Change]]] = {
    UpdateSection: _update_section,
    AddComment: _comment,
}
