"""Helpers that walk a record through its lifecycle with valid data (shared by tests)."""

from __future__ import annotations

from datetime import datetime, timedelta

from detectors.records import RecordStore, State
from tests.records.people import QA, SOC, sign
from tests.support.events import RECORDS_T0 as T0

ACTION = {
    "id": "A1", "description": "restrict engineering workstation access", "owner": "sec-lead",
    "domain": "both", "original_due": "2026-03-20", "current_due": "2026-03-20",
}


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def prepare_plan(store: RecordStore, rid: str, now: datetime) -> None:
    store.update_field(rid, "log.success_criteria", "no unapproved setpoint change for 30 days",
                       actor=QA, reason="criteria agreed", now=now)
    store.update_field(rid, "capa_actions", [ACTION], actor=QA, reason="plan drafted", now=now)


def finish_actions(store: RecordStore, rid: str, now: datetime) -> None:
    done = {**ACTION, "status": "done"}
    store.update_field(rid, "capa_actions", [done], actor=SOC, reason="action done", now=now)
    store.update_field(
        rid, "effectiveness_check",
        {"performed_by": "qa", "performed_at": now.isoformat(), "effective": True,
         "against_criteria": "no unapproved setpoint change for 30 days"},
        actor=QA, reason="30 days clean", now=now,
    )


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
