"""The master record's lifecycle as a pure function: which state changes are allowed, and why not.

    detected → triage → containment → investigation → action_plan → implementation
             → effectiveness_check → closed        (effectiveness_check → implementation on rework)
    any open state → cancelled (with a reason)

Approving the action plan (action_plan → implementation) and closing need two electronic
signatures given for that step since the record last entered its state: one as quality and one
as security, from two different people, each an approver holding the role signed as
(`signature_refusal` checks one signature as it is given). A signature offered anywhere else is
refused, never dropped. Closing also needs an effectiveness check marked effective against the
record's success criteria, and every CAPA action done.

Example::

    >>> missing = missing_for(record, State.CLOSED, roles={"quality"}, reason="done", signatures=[])
    >>> check_transition(record, State.TRIAGE, roles={"quality"}, reason="triaged", signatures=[])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from detectors.records._exceptions import TransitionRefused
from detectors.records.models import (
    OPEN_STATES,
    SIGNING_ROLES,
    ActionStatus,
    MasterRecord,
    Role,
    Signature,
    State,
)
from detectors.records.permissions import Permission, allows, granted_by

_FORWARD: dict[State, frozenset[State]] = {
    State.DETECTED: frozenset({State.TRIAGE}),
    State.TRIAGE: frozenset({State.CONTAINMENT}),
    State.CONTAINMENT: frozenset({State.INVESTIGATION}),
    State.INVESTIGATION: frozenset({State.ACTION_PLAN}),
    State.ACTION_PLAN: frozenset({State.IMPLEMENTATION}),
    State.IMPLEMENTATION: frozenset({State.EFFECTIVENESS_CHECK}),
    State.EFFECTIVENESS_CHECK: frozenset({State.CLOSED, State.IMPLEMENTATION}),
}

#: Transitions that are signed, and the meaning their signatures carry by default.
SIGNED: dict[tuple[State, State], str] = {
    (State.ACTION_PLAN, State.IMPLEMENTATION): "action plan approved",
    (State.EFFECTIVENESS_CHECK, State.CLOSED): "record closed",
}


def step_name(step: tuple[State, State]) -> str:
    """``action_plan->implementation``: how a signature names the step it approves."""
    return f"{step[0].value}->{step[1].value}"


def signed_step_from(state: State) -> tuple[State, State] | None:
    """The signed step that leaves ``state``, if any."""
    return next((step for step in SIGNED if step[0] is state), None)


@dataclass(frozen=True)
class Signer:
    """Who offers a signature, as the users table holds them when the command runs."""

    user_id: str
    roles: frozenset[str]


def signature_refusal(
    record: MasterRecord, signer: Signer, role: Role, meaning: str,
    given: Sequence[Signature],
) -> str:
    """Why ``signer`` cannot sign ``record`` now as ``role``, in words; "" when they can.
    ``given`` are the signatures already given for the step that leaves the current state."""
    step = signed_step_from(record.state)
    if step is None:
        steps = "; ".join(f"{meaning!r} in {a.value}" for (a, _), meaning in SIGNED.items())
        return (f"record {record.id} is in {record.state.value!r}, where no signature is "
                f"needed (signatures are given for: {steps}); nothing was signed")
    if role not in SIGNING_ROLES:
        return f"a signature is given as {' or '.join(SIGNING_ROLES)}, not as {role.value}"
    if role.value not in signer.roles:
        return f"{signer.user_id!r} does not hold the {role.value} role, so cannot sign as it"
    if not meaning.strip():
        return "a signature needs its meaning (e.g. 'action plan approved')"
    for sig in given:
        if sig.user_id == signer.user_id:
            return (f"{signer.user_id!r} already signed {step_name(step)} as {sig.role.value}; "
                    "the other signature must come from another person")
        if sig.role is role:
            return (f"the {role.value} signature for {step_name(step)} is already given by "
                    f"{sig.user_id!r}")
    return ""


def allowed_targets(current: State) -> frozenset[State]:
    """The states reachable from ``current`` (guards aside)."""
    if current not in OPEN_STATES:
        return frozenset()
    return _FORWARD.get(current, frozenset()) | {State.CANCELLED}


def missing_for(
    record: MasterRecord, to_state: State, *, roles: Iterable[str], reason: str,
    signatures: Sequence[Signature],
) -> list[str]:
    """Everything that stands between ``record`` and ``to_state``; empty means allowed."""
    if to_state not in allowed_targets(record.state):
        targets = sorted(allowed_targets(record.state))
        return [f"not a lifecycle step (allowed from {record.state.value!r}: "
                f"{', '.join(targets) or 'none, the record is final'})"]
    missing: list[str] = []
    if not reason.strip():
        missing.append("a reason")
    if not allows(roles, Permission.TRANSITION):
        holders = " or the ".join(granted_by(Permission.TRANSITION))
        missing.append(f"an actor holding the {holders} role")
    if (record.state, to_state) in SIGNED:
        missing += _missing_signatures(signatures)
    if to_state is State.IMPLEMENTATION and record.state is State.ACTION_PLAN:
        missing += _missing_plan(record)
    if to_state is State.CLOSED:
        missing += _missing_closure(record)
    return missing


def check_transition(
    record: MasterRecord, to_state: State, *, roles: Iterable[str], reason: str,
    signatures: Sequence[Signature],
) -> None:
    """Raise `TransitionRefused` naming current state, requested state and what is missing."""
    missing = missing_for(record, to_state, roles=roles, reason=reason, signatures=signatures)
    if missing:
        raise TransitionRefused(record.id, record.state.value, to_state.value, missing)


def _missing_signatures(signatures: Sequence[Signature]) -> list[str]:
    signed = {s.role for s in signatures}
    missing = [
        f"an electronic signature as {role.value} (an approver holding the {role.value} role "
        "signs with their password)"
        for role in SIGNING_ROLES
        if role not in signed
    ]
    if not missing and len({s.user_id for s in signatures}) < len(SIGNING_ROLES):
        missing.append("signatures from two different people (one person signed as both)")
    return missing


def _missing_plan(record: MasterRecord) -> list[str]:
    missing = []
    if not record.capa_actions:
        missing.append("at least one CAPA action in the plan")
    if not record.log.success_criteria.strip():
        missing.append("success criteria (field log.success_criteria)")
    return missing


def _missing_closure(record: MasterRecord) -> list[str]:
    missing = []
    check = record.effectiveness_check
    if not record.log.success_criteria.strip():
        missing.append("success criteria (field log.success_criteria)")
    if check is None:
        missing.append("an effectiveness check (field effectiveness_check)")
    elif not check.effective:
        missing.append("an effectiveness check marked effective")
    elif not check.against_criteria.strip():
        missing.append("an effectiveness check stating the success criteria it was checked against")
    if not record.capa_actions:
        missing.append("at least one CAPA action")
    undone = [a.id for a in record.capa_actions if a.status is not ActionStatus.DONE]
    if undone:
        missing.append(f"every CAPA action done (not done: {', '.join(undone)})")
    return missing
