"""Helpers that walk a record through its lifecycle with valid data (shared by tests)."""

from __future__ import annotations

from datetime import datetime, timedelta

from detectors.records import RecordStore, Signature, State
from tests.records.conftest import T0

QA = {"quality"}
SEC = {"security"}
SIGNED = [
    Signature(printed_name="Quinn Quality", role="quality", meaning="approved"),
    Signature(printed_name="Sam Security", role="security", meaning="approved"),
]

ACTION = {
    "id": "A1", "description": "restrict engineering workstation access", "owner": "sec-lead",
    "domain": "both", "original_due": "2026-03-20", "current_due": "2026-03-20",
}


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def prepare_plan(store: RecordStore, rid: str, now: datetime) -> None:
    store.update_field(rid, "log.success_criteria", "no unapproved setpoint change for 30 days",
                       actor="qa", reason="criteria agreed", now=now)
    store.update_field(rid, "capa_actions", [ACTION], actor="qa", reason="plan drafted", now=now)


def finish_actions(store: RecordStore, rid: str, now: datetime) -> None:
    done = {**ACTION, "status": "done"}
    store.update_field(rid, "capa_actions", [done], actor="sec", reason="action done", now=now)
    store.update_field(
        rid, "effectiveness_check",
        {"performed_by": "qa", "performed_at": now.isoformat(), "effective": True,
         "against_criteria": "no unapproved setpoint change for 30 days"},
        actor="qa", reason="30 days clean", now=now,
    )


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
        signed = SIGNED if state in (State.IMPLEMENTATION, State.CLOSED) else []
        store.transition(rid, state, actor="qa", roles=QA, reason=f"to {state.value}", now=now,
                         signatures=signed)
        hours += 1

