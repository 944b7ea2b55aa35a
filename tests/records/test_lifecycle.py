"""The lifecycle: a record goes all the way to closed; every forbidden step is refused clearly."""

from __future__ import annotations

import pytest

from detectors.records import (
    OPEN_STATES,
    CheckEffectiveness,
    MasterRecord,
    ReasonRequired,
    RecordStore,
    Signature,
    State,
    TransitionRefused,
    allowed_targets,
    missing_for,
)
from detectors.records.lifecycle import SIGNED as SIGNED_STEPS
from tests.records.lifecycle_steps import at, drive, finish_actions, prepare_plan, sign_both
from tests.records.people import OPERATOR, QA, SOC, sign
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event

FORWARD = [State.DETECTED, State.TRIAGE, State.CONTAINMENT, State.INVESTIGATION,
           State.ACTION_PLAN, State.IMPLEMENTATION, State.EFFECTIVENESS_CHECK, State.CLOSED]
ROLES = {"quality"}
SIGNED = [
    Signature(printed_name="Quinn Lee", user_id="qa.lee", role="quality", meaning="approved"),
    Signature(printed_name="Sam Kim", user_id="soc.kim", role="security", meaning="approved"),
]


def new_record(store: RecordStore) -> str:
    (out,) = store.record_events([(event(1), classified())], now=T0)
    assert out.record_id is not None
    return out.record_id


def test_whole_lifecycle_to_closed(store: RecordStore) -> None:
    rid = new_record(store)
    drive(store, rid, State.CLOSED)
    record = store.get_record(rid)
    assert record.state is State.CLOSED
    assert [(s.user_id, s.role.value, s.meaning, s.step) for s in record.signatures] == [
        ("qa.lee", "quality", "approved", "action_plan->implementation"),
        ("soc.kim", "security", "approved", "action_plan->implementation"),
        ("qa.lee", "quality", "approved", "effectiveness_check->closed"),
        ("soc.kim", "security", "approved", "effectiveness_check->closed")]
    assert [s.printed_name for s in record.signatures[:2]] == ["Quinn Lee", "Sam Kim"]
    assert all(s.signed_at is not None for s in record.signatures)
    states = [e.new for e in store.trail(rid) if e.field == "state"]
    assert states == [f'"{s.value}"' for s in FORWARD[1:]]
    assert store.verify_trail().ok


def test_cancel_from_an_open_state_needs_a_reason(store: RecordStore) -> None:
    rid = new_record(store)
    drive(store, rid, State.INVESTIGATION)
    record = store.get_record(rid)
    assert "a reason" in missing_for(record, State.CANCELLED, roles=ROLES, reason=" ",
                                     signatures=[])
    record = store.transition(rid, "cancelled", actor=SOC,
                              reason="duplicate of NC-2026-000009", now=at(9))
    assert record.state is State.CANCELLED and record.cancel_reason.startswith("duplicate")


@pytest.mark.parametrize("state", sorted(OPEN_STATES))
def test_cancel_is_allowed_from_every_open_state(state: State) -> None:
    assert missing_for(_record(state), State.CANCELLED, roles=ROLES, reason="r",
                       signatures=[]) == []


def test_store_requires_reason_and_actor(store: RecordStore) -> None:
    from detectors.records import Actor

    rid = new_record(store)
    with pytest.raises(ReasonRequired, match="reason"):
        store.transition(rid, "triage", actor=QA, reason="", now=at(1))
    with pytest.raises(ReasonRequired, match="actor"):
        store.transition(rid, "triage", actor=Actor(" "), reason="x", now=at(1))


def _record(state: State, **extra: object) -> MasterRecord:
    base = {
        "id": "NC-2026-000001", "classification": "joint", "state": state,
        "security_ticket": "SEC-2026-000001", "controller": "c", "tag": "t", "site": "s",
        "line": "l", "severity": "high", "description": "d", "detected_at": T0,
        "created_at": T0, "last_event_at": T0, "rules_fired": [], "criteria_version": "1",
        "correlation_key": "k",
    }
    return MasterRecord.model_validate({**base, **extra})


@pytest.mark.parametrize("current", list(State))
@pytest.mark.parametrize("target", list(State))
def test_only_lifecycle_steps_are_allowed(current: State, target: State) -> None:
    """Every (current, target) pair outside the graph is refused, naming both states."""
    allowed = allowed_targets(current)
    missing = missing_for(_record(current), target, roles=ROLES, reason="r", signatures=SIGNED)
    step_error = [m for m in missing if m.startswith("not a lifecycle step")]
    assert bool(step_error) == (target not in allowed)
    if current in (State.CLOSED, State.CANCELLED):
        assert not allowed


def test_forbidden_transition_error_names_states_and_what_is_missing(store: RecordStore) -> None:
    rid = new_record(store)
    with pytest.raises(TransitionRefused) as info:
        store.transition(rid, "closed", actor=QA, reason="done", now=at(1))
    message = str(info.value)
    assert "'detected'" in message and "'closed'" in message and "not a lifecycle step" in message
    assert info.value.current == "detected" and info.value.requested == "closed"
    assert store.get_record(rid).state is State.DETECTED


def test_plan_approval_needs_both_signatures_criteria_and_actions(store: RecordStore) -> None:
    rid = new_record(store)
    drive(store, rid, State.ACTION_PLAN)
    sign(store, rid, "qa.lee", "quality", at(9))
    with pytest.raises(TransitionRefused) as info:
        store.transition(rid, "implementation", actor=QA, reason="approve", now=at(9))
    text = str(info.value)
    assert "signature as security" in text and "signature as quality" not in text
    assert "CAPA action" in text and "success criteria" in text
    prepare_plan(store, rid, at(9))
    sign(store, rid, "soc.kim", "security", at(9))
    store.transition(rid, "implementation", actor=QA, reason="approve", now=at(9))


def test_closing_needs_effective_check_every_action_done_and_new_signatures(
    store: RecordStore,
) -> None:
    rid = new_record(store)
    drive(store, rid, State.EFFECTIVENESS_CHECK)
    sign_both(store, rid, at(9))
    with pytest.raises(TransitionRefused) as info:
        store.transition(rid, "closed", actor=QA, reason="close", now=at(9))
    assert "effectiveness check" in str(info.value) and "not done: A1" in str(info.value)
    store.execute(CheckEffectiveness(record_id=rid, effective=False, reason="check failed",
                                     against_criteria="30 days"), actor=QA, now=at(9))
    with pytest.raises(TransitionRefused, match="marked effective"):
        store.transition(rid, "closed", actor=QA, reason="close", now=at(9))
    # rework goes back to implementation, then forward again: the signatures given before
    # the rework do not carry over
    store.transition(rid, "implementation", actor=QA, reason="rework", now=at(10))
    store.transition(rid, "effectiveness_check", actor=QA, reason="again", now=at(11))
    finish_actions(store, rid, at(12))
    with pytest.raises(TransitionRefused, match="signature as quality"):
        store.transition(rid, "closed", actor=QA, reason="close", now=at(12))
    sign_both(store, rid, at(12))
    store.transition(rid, "closed", actor=QA, reason="close", now=at(12))
    with pytest.raises(TransitionRefused, match="final"):
        store.transition(rid, "cancelled", actor=QA, reason="x", now=at(13))


def test_actor_needs_a_quality_or_security_role(store: RecordStore) -> None:
    rid = new_record(store)
    with pytest.raises(TransitionRefused, match="quality or the security role"):
        store.transition(rid, "triage", actor=OPERATOR, reason="x", now=at(1))


def test_signed_steps_are_the_plan_approval_and_closure() -> None:
    assert set(SIGNED_STEPS) == {(State.ACTION_PLAN, State.IMPLEMENTATION),
                                 (State.EFFECTIVENESS_CHECK, State.CLOSED)}


def test_signature_needs_printed_name_and_meaning() -> None:
    with pytest.raises(ValueError, match="printed_name"):
        Signature.model_validate({"printed_name": "", "role": "quality", "meaning": "ok"})
    assert isinstance(Signature(printed_name="A", role="quality", meaning="m"), Signature)
