"""The joint procedure's guard table (`lifecycle.GUARDS`), every row refused with its
message; the steps' own checks; the risk matrix; the look-back proposal on hand-built
histories. Store tests run on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from detectors.records import (
    GUARDS,
    AddCapaAction,
    AssignLeads,
    CapaAction,
    CheckEffectiveness,
    ContainmentDecision,
    DecideNotification,
    Gate,
    GuardRefused,
    InvalidUpdate,
    MasterRecord,
    NotificationDecision,
    PlaceHold,
    RecordDecision,
    RecordStore,
    RiskMatrix,
    SetContainment,
    State,
    TransitionRefused,
    UpdateCapaAction,
    missing_at,
    propose_look_back,
)
from tests.records.lifecycle_steps import ACTION, NOTIFICATIONS, assess, at, drive
from tests.records.people import QA, SOC
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event


def _record(state: State = State.TRIAGE, **extra: Any) -> MasterRecord:
    base = {
        "id": "NC-2026-000001", "classification": "joint", "state": state,
        "security_ticket": "SEC-2026-000001", "controller": "press-01", "tag": "ZoneTemp",
        "site": "s", "line": "l", "severity": "high", "description": "d", "detected_at": T0,
        "created_at": T0, "last_event_at": T0, "rules_fired": [], "criteria_version": "1",
        "correlation_key": "k",
    }
    return MasterRecord.model_validate({**base, **extra})


CONTRIBUTION = {"author": "x", "signed_off": True}
CHECKED = {"performed_by": "x", "performed_at": T0, "effective": True, "against_criteria": "c"}

#: (gate, record data, the exact items missing), one row per guard of the table.
CASES: list[tuple[Gate, dict[str, Any], list[str]]] = [
    (Gate.CONTAINMENT_DECISION, {}, [
        "a quality contribution to the impact assessment (contribute-impact --function "
        "quality)",
        "a security contribution to the impact assessment (contribute-impact --function "
        "security)"]),
    (Gate.CONTAINMENT_DECISION, {"impact": {"contributions": [
        {"function": "quality", **CONTRIBUTION},
        {"function": "security", **CONTRIBUTION, "signed_off": False}]}}, [
        "the security contribution signed off by security (contribute-impact --function "
        "security --signed-off)"]),
    (Gate.PLAN_APPROVAL, {}, [
        "at least one CAPA action in the plan", "success criteria (field log.success_criteria)",
        "a root cause (field log.root_cause)",
        "an RCA that records the security domain on this joint record: a security finding or "
        "'none found' with the reason (rca --security-found yes|no --security-statement)"]),
    (Gate.PLAN_APPROVAL, {"classification": "quality_only", "capa_actions": [ACTION],
                          "log": {"success_criteria": "c", "root_cause": "r"}}, []),
    (Gate.PLAN_APPROVAL, {"capa_actions": [ACTION], "log": {"success_criteria": "c",
                          "root_cause": "r"}, "rca": {"security_finding": {
                              "found": False, "statement": "no misuse found"}}}, []),
    (Gate.CLOSURE, {"capa_actions": [{**ACTION, "status": "done"}],
                    "log": {"success_criteria": "c"}, "effectiveness_check": CHECKED,
                    "containment": {"lot_holds": [{"lot_id": "LOT-7", "held_at": T0}],
                                    "decisions": [{"kind": "release_freeze",
                                                   "status": "in_effect"}]}}, [
        "a notification decision for the regulator (notify --audience regulator)",
        "a notification decision for the certification body (notify --audience "
        "certification_body)",
        "a notification decision for the customer (notify --audience customer)",
        "containment released or justified (still in effect: lot LOT-7 on hold, decision 0 "
        "(release_freeze); release or lift them, or say why they stay in "
        "containment.kept_justification)",
        "every done CAPA action's effectiveness checked and effective (not: A1)"]),
    (Gate.CLOSURE, {"capa_actions": [ACTION], "impact": {"notifications": NOTIFICATIONS},
                    "containment": {"lot_holds": [{"lot_id": "LOT-7", "held_at": T0}],
                                    "kept_justification": "LOT-7 scrapped, stays blocked"},
                    "effectiveness_check": {**CHECKED, "effective": False}}, [
        "success criteria (field log.success_criteria)",
        "an effectiveness check marked effective",
        "every CAPA action done (not done: A1)"]),
    (Gate.CLOSURE, {"impact": {"notifications": NOTIFICATIONS}, "log": {"success_criteria": "c"}},
     ["an effectiveness check (field effectiveness_check)", "at least one CAPA action"]),
]


@pytest.mark.parametrize(("gate", "data", "missing"), CASES)
def test_each_guard_names_what_is_missing(gate: Gate, data: dict[str, Any],
                                          missing: list[str]) -> None:
    assert missing_at(_record(**data), gate) == missing


def test_the_table_is_in_the_procedures_order() -> None:
    order = [g.gate for g in GUARDS]
    assert order == sorted(order, key=[Gate.CONTAINMENT_DECISION, Gate.PLAN_APPROVAL,
                                       Gate.CLOSURE].index)


@pytest.fixture
def rid(store: RecordStore) -> str:
    (out,) = store.record_events([(event(1), classified())], now=T0)
    return out.record_id or ""


def test_every_containment_decision_waits_for_the_assessment(
    store: RecordStore, rid: str,
) -> None:
    before = (store.get_record(rid), store.trail())
    freeze = ContainmentDecision(kind="release_freeze", status="in_effect")
    for command in (PlaceHold(record_id=rid, lot_id="LOT-7", reason="hold"),
                    RecordDecision(record_id=rid, reason="freeze", decision=freeze)):
        with pytest.raises(GuardRefused) as info:
            store.execute(command, actor=QA, now=at(1))
        assert len(info.value.missing) == 2 and info.value.current == "detected"
    with pytest.raises(GuardRefused, match=r"changing containment\.release_freeze needs first"):
        store.update_field(rid, "containment.release_freeze", True, actor=QA, reason="x",
                           now=at(1))
    assert (store.get_record(rid), store.trail()) == before
    assess(store, rid, at(1))
    record = store.execute(RecordDecision(record_id=rid, reason="freeze", decision=freeze),
                           actor=QA, now=at(2))
    assert record.containment.decisions[0].decided_by == "qa.lee"
    trail = store.trail()
    forged = freeze.model_copy(update={"decided_by": "qa.boss"})
    with pytest.raises(InvalidUpdate, match=r"decided_by 'qa.boss'.*in the name of who records "
                                            r"it \(qa.lee\)"):
        store.execute(RecordDecision(record_id=rid, reason="x", decision=forged), actor=QA,
                      now=at(3))
    assert store.trail() == trail and len(store.get_record(rid).containment.decisions) == 1


def test_closure_refused_until_notifications_and_containment(
    store: RecordStore, rid: str,
) -> None:
    assess(store, rid, at(0))
    store.execute(PlaceHold(record_id=rid, lot_id="LOT-7", reason="hold"), actor=QA, now=at(0))
    with pytest.raises(TransitionRefused) as info:
        drive(store, rid, State.CLOSED)
    assert "containment released or justified (still in effect: lot LOT-7 on hold" in str(
        info.value)
    assert store.get_record(rid).state is State.EFFECTIVENESS_CHECK
    store.execute(SetContainment(record_id=rid, reason="scrapped",
                                 kept_justification="LOT-7 scrapped; the hold stays"),
                  actor=SOC, now=at(8))
    store.transition(rid, "closed", actor=QA, reason="closed", now=at(8))
    assert store.get_record(rid).state is State.CLOSED


def test_the_steps_own_checks(store: RecordStore, rid: str) -> None:
    before = store.trail()
    with pytest.raises(InvalidUpdate, match=r"'op\.smith' does not hold the quality role"):
        store.execute(AssignLeads(record_id=rid, lead="op.smith", co_lead="soc.kim",
                                  reason="x"), actor=QA, now=at(1))
    with pytest.raises(InvalidUpdate, match="'nobody' is not an enabled user"):
        store.execute(AssignLeads(record_id=rid, lead="qa.lee", co_lead="nobody",
                                  reason="x"), actor=QA, now=at(1))
    late = {**ACTION, "current_due": "2026-04-01", "status": "in_progress"}
    with pytest.raises(InvalidUpdate) as info:
        store.execute(AddCapaAction(record_id=rid, reason="x",
                                    action=CapaAction.model_validate(late)), actor=QA,
                      now=at(1))
    assert str(info.value) == (
        "new CAPA action 'A1' cannot have: status 'in_progress' (a new action is open); "
        "current_due differs from original_due (move it later with MoveCapaDue)")
    store.execute(AddCapaAction(record_id=rid, reason="plan",
                                action=CapaAction.model_validate(ACTION)), actor=QA, now=at(1))
    with pytest.raises(InvalidUpdate, match="'effectiveness_check' changes only through "
                                            "CheckEffectiveness"):
        store.execute(UpdateCapaAction(record_id=rid, action_id="A1", reason="x",
                                       changes={"effectiveness_check": CHECKED}),
                      actor=QA, now=at(2))
    with pytest.raises(InvalidUpdate, match="cannot be dated in the future"):
        store.execute(CheckEffectiveness(record_id=rid, reason="x", effective=True,
                                         against_criteria="c", performed_at=at(3)),
                      actor=QA, now=at(2))
    with pytest.raises(InvalidUpdate, match="before record"):
        store.execute(CheckEffectiveness(record_id=rid, reason="x", effective=True,
                                         against_criteria="c",
                                         performed_at=T0 - timedelta(days=400)),
                      actor=QA, now=at(2))
    with pytest.raises(InvalidUpdate, match="so give notified_to"):
        store.execute(DecideNotification(record_id=rid, reason="x", decision=(
            NotificationDecision(audience="regulator", notify=True, rationale="reportable"))),
            actor=QA, now=at(2))
    assert len(store.trail()) == len(before) + 1  # only the CAPA action went in


def test_notification_decisions_carry_who_and_when(store: RecordStore, rid: str) -> None:
    record = store.execute(DecideNotification(record_id=rid, reason="decided", decision=(
        NotificationDecision(audience="customer", notify=True, rationale="lot shipped",
                             notified_to="ACME QA", notified_at=at(2)))), actor=QA, now=at(3))
    (made,) = record.impact.notifications
    assert (made.decided_by, made.decided_at, made.notified_to) == ("qa.lee", at(3), "ACME QA")
    entry = store.trail(rid)[-1]
    assert entry.field == "impact.notifications" and '"decided_by":"qa.lee"' in (entry.new or "")


@pytest.mark.parametrize(("severity", "likelihood", "level"), [
    ("negligible", "rare", "low"), ("negligible", "likely", "medium"),
    ("major", "possible", "high"), ("minor", "possible", "medium"),
    ("critical", "rare", "medium"), ("critical", "likely", "high"),
])
def test_the_default_risk_matrix(severity: str, likelihood: str, level: str) -> None:
    assert RiskMatrix().level(severity, likelihood) == level


def test_a_configured_matrix_is_checked_and_used() -> None:
    matrix = RiskMatrix(severities=("minor", "serious"), likelihoods=("once", "often"),
                        levels=(("accept", "watch"), ("watch", "act")))
    assert matrix.level("serious", "often") == "act"
    with pytest.raises(InvalidUpdate, match="use one of once, often"):
        matrix.level("serious", "always")
    with pytest.raises(ValidationError, match=r"needs 2 rows .* of 2 levels"):
        RiskMatrix(severities=("a", "b"), likelihoods=("x", "y"), levels=(("l", "l"),))


def _history(record_id: str, state: str, evidence: list[dict[str, Any]],
             controller: str = "press-01") -> MasterRecord:
    items = [{"event_id": e["id"], "sha256": "0" * 64, "change_kind": "setpoint_change",
              "verdict": "unapproved", "severity": "high", "occurred_at": e["at"],
              "detected_at": e["at"], "attached_at": e["at"], "raw": e.get("raw", {})}
             for e in evidence]
    return _record(State(state), id=record_id, controller=controller, evidence=items)


def test_look_back_from_hand_built_histories() -> None:
    change = _history("NC-1", "triage", [{"id": "ev-2", "at": at(5)},
                                         {"id": "ev-1", "at": at(3)}])
    found = propose_look_back([change], "press-01")
    assert found is not None and found.start == at(3)
    assert found.basis.startswith("the value replaced by event ev-1 held until then (NC-1")
    gap = _history("NC-2", "investigation", [{
        "id": "ev-9", "at": at(4), "raw": {"gap": {"start": at(1).isoformat(),
                                                   "end": at(4).isoformat()}}}])
    found = propose_look_back([change, gap], "press-01")
    assert found is not None and (found.start, found.basis[:40]) == (
        at(1), "last good read before the monitoring gap")
    closed = _history("NC-0", "closed", [{"id": "ev-0", "at": T0 - timedelta(days=30)}])
    other = _history("NC-3", "triage", [{"id": "ev-7", "at": at(0)}], controller="press-02")
    found = propose_look_back([closed, other, change], "press-01")
    assert found is not None and found.start == at(3)  # closed and other controllers ignored
    assert propose_look_back([closed], "press-01") is None
    found = propose_look_back([closed, change], "press-01", record_id="NC-0")  # its own
    assert found is not None and found.start == T0 - timedelta(days=30)


def test_the_store_proposes_from_its_evidence(store: RecordStore, rid: str) -> None:
    store.record_events([(event(2, minutes=10), classified())], now=T0)
    found = store.look_back(rid)
    assert found is not None and found.start == T0 - timedelta(seconds=30)
    assert "ev-1" in found.basis and "2 evidence items" in found.basis


def test_follow_up_dates_never_move_the_original_due(store: RecordStore, rid: str) -> None:
    store.execute(AddCapaAction(record_id=rid, reason="plan",
                                action=CapaAction.model_validate(ACTION)), actor=QA, now=at(1))
    with pytest.raises(InvalidUpdate, match="original due date is kept"):
        store.execute(UpdateCapaAction(record_id=rid, action_id="A1", reason="x",
                                       changes={"original_due": date(2026, 5, 1)}),
                      actor=QA, now=at(2))
