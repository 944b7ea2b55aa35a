"""Helpers that walk a record through its lifecycle with valid data (shared by tests)."""

from __future__ import annotations

from datetime import datetime, timedelta

from detectors.records import (
    AddCapaAction,
    CapaAction,
    CheckEffectiveness,
    ContributeImpact,
    DecideNotification,
    NotificationDecision,
    RecordStore,
    State,
    UpdateCapaAction,
)
from tests.records.people import QA, SOC, sign
from tests.support.events import RECORDS_T0 as T0

ACTION = {
    "id": "A1", "description": "restrict engineering workstation access", "owner": "sec-lead",
    "domain": "both", "original_due": "2026-03-20", "current_due": "2026-03-20",
}


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


#: What the joint procedure asks of a record before closure beside its CAPA (the guards).
NOTIFICATIONS = [
    {"audience": audience, "notify": False, "rationale": "no product released"}
    for audience in ("regulator", "certification_body", "customer")
]


def assess(store: RecordStore, rid: str, now: datetime) -> None:
    """Signed-off quality and security contributions: what a containment decision needs."""
    store.execute(ContributeImpact(record_id=rid, function="quality", signed_off=True,
                                   assessment="LOT-7 made under the change", reason="QA view"),
                  actor=QA, now=now)
    store.execute(ContributeImpact(record_id=rid, function="security", signed_off=True,
                                   assessment="EWS password shared", reason="SOC view"),
                  actor=SOC, now=now)


def prepare_plan(store: RecordStore, rid: str, now: datetime) -> None:
    """Success criteria, one CAPA action, a root cause and the RCA's security finding: what
    plan approval needs (section updates where they are free text, the CAPA step)."""
    store.update_field(rid, "log.success_criteria", "no unapproved setpoint change for 30 days",
                       actor=QA, reason="criteria agreed", now=now)
    store.execute(AddCapaAction(record_id=rid, action=CapaAction.model_validate(ACTION),
                                reason="plan drafted"), actor=QA, now=now)
    store.update_field(rid, "log.root_cause", "shared engineering workstation password",
                       actor=QA, reason="RCA", now=now)
    store.update_field(rid, "rca.security_finding",
                       {"found": True, "statement": "shared password on the EWS"},
                       actor=SOC, reason="security domain of the RCA", now=now)


def finish_actions(store: RecordStore, rid: str, now: datetime) -> None:
    store.execute(UpdateCapaAction(record_id=rid, action_id="A1", changes={"status": "done"},
                                   reason="action done"), actor=SOC, now=now)
    store.execute(CheckEffectiveness(record_id=rid, action_id="A1", effective=True,
                                     against_criteria="no shared accounts on the EWS",
                                     reason="action checked"), actor=SOC, now=now)
    for decision in NOTIFICATIONS:
        store.execute(DecideNotification(record_id=rid, reason="notification decision",
                                         decision=NotificationDecision.model_validate(decision)),
                      actor=QA, now=now)
    store.execute(CheckEffectiveness(record_id=rid, effective=True, reason="30 days clean",
                                     against_criteria="no unapproved setpoint change for 30 days"),
                  actor=QA, now=now)


def sign_both(store: RecordStore, rid: str, now: datetime) -> None:
    """The two signatures of a signed step: quality by qa.lee, security by soc.kim."""
    sign(store, rid, "qa.lee", "quality", now)
    sign(store, rid, "soc.kim", "security", now)


def drive(store: RecordStore, rid: str, to: State, start_hours: float = 1.0) -> None:
    """Walk ``rid`` from detected to ``to``, one hour per step, with valid data."""
    order = [State.TRIAGE, State.CONTAINMENT, State.INVESTIGATION, State.ACTION_PLAN,
             State.IMPLEMENTATION, State.EFFECTIVENESS_CHECK, State.CLOSED]
    hours = start_hours
    for state in order[: order.index(to) + 1]:
        now = at(hours)
        if state is State.IMPLEMENTATION:
            prepare_plan(store, rid, now)
        if state is State.CLOSED:
            finish_actions(store, rid, now)
        if state in (State.IMPLEMENTATION, State.CLOSED):
            sign_both(store, rid, now)
        store.transition(rid, state, actor=QA, reason=f"to {state.value}", now=now)
        hours += 1
