"""The master record's lifecycle as a pure function: which state changes are allowed, and why not.

    detected → triage → containment → investigation → action_plan → implementation
             → effectiveness_check → closed        (effectiveness_check → implementation on rework)
    any open state → cancelled (with a reason)

The joint procedure's guards are data: `GUARDS`, one table of (gate, check) in the order of
the procedure. A gate is a moment of the workflow (`Gate`): a containment decision (a lot hold,
a release freeze, a security action, a trade-off: any of them), the action plan's approval
(action_plan → implementation), closure. `missing_at` runs every check of a gate and returns
everything missing, so a refusal names every missing item at once.

Approving the action plan (action_plan → implementation) and closing also need two electronic
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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from detectors.records._exceptions import TransitionRefused
from detectors.records.joint import Audience
from detectors.records.models import (
    OPEN_STATES,
    SIGNING_ROLES,
    ActionStatus,
    DecisionStatus,
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
        missing += missing_at(record, Gate.PLAN_APPROVAL)
    if to_state is State.CLOSED:
        missing += missing_at(record, Gate.CLOSURE)
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


# --- the joint procedure's guards, as one table ---------------------------------------------


class Gate(StrEnum):
    """A moment of the workflow that `GUARDS` protects; the value names it in a refusal."""

    CONTAINMENT_DECISION = "a containment decision"
    PLAN_APPROVAL = "approving the action plan"
    CLOSURE = "closing the record"


@dataclass(frozen=True)
class Guard:
    """One row of the guard table: at ``gate``, ``check`` returns what is missing (in
    words, naming the field or command that supplies it), empty when satisfied."""

    gate: Gate
    check: Callable[[MasterRecord], list[str]]


def _joint(record: MasterRecord) -> bool:
    return record.classification == "joint"


def _contribution(function: str) -> Callable[[MasterRecord], list[str]]:
    def check(record: MasterRecord) -> list[str]:
        found = [c for c in record.impact.contributions if c.function == function]
        if not found:
            return [f"a {function} contribution to the impact assessment (contribute-impact "
                    f"--function {function})"]
        if not found[0].signed_off:
            return [f"the {function} contribution signed off by {function} "
                    f"(contribute-impact --function {function} --signed-off)"]
        return []
    return check


def _needs(what: str, present: Callable[[MasterRecord], object]) -> Callable[
        [MasterRecord], list[str]]:
    return lambda record: [] if present(record) else [what]


def _security_finding(record: MasterRecord) -> list[str]:
    if not _joint(record) or record.rca.security_finding is not None:
        return []
    return ["an RCA that records the security domain on this joint record: a security finding "
            "or 'none found' with the reason (rca --security-found yes|no --security-statement)"]


def _notifications(record: MasterRecord) -> list[str]:
    decided = {n.audience for n in record.impact.notifications}
    return [f"a notification decision for the {audience.value.replace('_', ' ')} "
            f"(notify --audience {audience.value})"
            for audience in Audience if audience not in decided]


def _containment_settled(record: MasterRecord) -> list[str]:
    held = sorted({h.lot_id for h in record.containment.lot_holds if h.released_at is None})
    active = [f"decision {n} ({d.kind.value})"
              for n, d in enumerate(record.containment.decisions)
              if d.status is DecisionStatus.IN_EFFECT]
    if not (held or active) or record.containment.kept_justification.strip():
        return []
    still = ", ".join([*(f"lot {lot} on hold" for lot in held), *active])
    return [f"containment released or justified (still in effect: {still}; release or lift "
            "them, or say why they stay in containment.kept_justification)"]


def _actions_done(record: MasterRecord) -> list[str]:
    undone = [a.id for a in record.capa_actions
              if a.status is not ActionStatus.DONE]
    return [f"every CAPA action done (not done: {', '.join(undone)})"] if undone else []


def _actions_checked(record: MasterRecord) -> list[str]:
    unchecked = [a.id for a in record.capa_actions if a.status is ActionStatus.DONE
                 and (a.effectiveness_check is None or not a.effectiveness_check.effective)]
    return ([f"every done CAPA action's effectiveness checked and effective (not: "
             f"{', '.join(unchecked)})"] if unchecked else [])


def _record_check(record: MasterRecord) -> list[str]:
    check = record.effectiveness_check
    if check is None:
        return ["an effectiveness check (field effectiveness_check)"]
    if not check.effective:
        return ["an effectiveness check marked effective"]
    if not check.against_criteria.strip():
        return ["an effectiveness check stating the success criteria it was checked against"]
    return []


_CRITERIA = _needs("success criteria (field log.success_criteria)",
                   lambda r: r.log.success_criteria.strip())

#: The guard table, in the order of the joint procedure. Each row is checked at its gate;
#: a refusal lists what every row of the gate found missing.
GUARDS: tuple[Guard, ...] = (
    Guard(Gate.CONTAINMENT_DECISION, _contribution("quality")),
    Guard(Gate.CONTAINMENT_DECISION, _contribution("security")),
    Guard(Gate.PLAN_APPROVAL, _needs("at least one CAPA action in the plan",
                                     lambda r: r.capa_actions)),
    Guard(Gate.PLAN_APPROVAL, _CRITERIA),
    Guard(Gate.PLAN_APPROVAL, _needs("a root cause (field log.root_cause)",
                                     lambda r: r.log.root_cause.strip())),
    Guard(Gate.PLAN_APPROVAL, _security_finding),
    Guard(Gate.CLOSURE, _notifications),
    Guard(Gate.CLOSURE, _containment_settled),
    Guard(Gate.CLOSURE, _CRITERIA),
    Guard(Gate.CLOSURE, _record_check),
    Guard(Gate.CLOSURE, _needs("at least one CAPA action", lambda r: r.capa_actions)),
    Guard(Gate.CLOSURE, _actions_done),
    Guard(Gate.CLOSURE, _actions_checked),
)


def missing_at(record: MasterRecord, gate: Gate) -> list[str]:
    """Everything `GUARDS` finds missing at ``gate``, in table order."""
    return [item for guard in GUARDS if guard.gate is gate for item in guard.check(record)]


def effectiveness_date_problem(
    performed_at: datetime, record: MasterRecord, now: datetime,
) -> str:
    """Why an effectiveness check dated ``performed_at`` cannot be: before the record
    existed or in the future; "" when the date is possible."""
    if performed_at < record.created_at:
        return (f"an effectiveness check cannot be dated {performed_at.isoformat()}, before "
                f"record {record.id} was opened ({record.created_at.isoformat()})")
    if performed_at > now:
        return (f"an effectiveness check cannot be dated in the future "
                f"({performed_at.isoformat()}, now is {now.isoformat()})")
    return ""
