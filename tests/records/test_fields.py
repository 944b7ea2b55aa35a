"""Record fields (27001 log, impact, lots, containment, RCA, CAPA) change only with a trail
entry."""

from __future__ import annotations

import orjson
import pytest

from detectors.records import (
    AddCapaAction,
    AssessImpact,
    CapaAction,
    FishboneCategory,
    InvalidUpdate,
    PlaceHold,
    ReasonRequired,
    RecordRootCause,
    RecordStore,
    State,
    SystemInScope,
    UpdateSection,
    WhyAnswer,
)
from tests.records.lifecycle_steps import ACTION, assess, at, drive
from tests.records.people import QA, SOC
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event


@pytest.fixture
def rid(store: RecordStore) -> str:
    (out,) = store.record_events([(event(1), classified())], now=T0)
    return out.record_id or ""


def test_sections_update_with_old_new_actor_reason(store: RecordStore, rid: str) -> None:
    store.update_field(rid, "log.root_cause", "shared engineering password", actor=QA,
                       reason="RCA concluded", now=at(1))
    store.execute(AssessImpact(
        record_id=rid, reason="assessed", product_impact="lots LOT-7 out of spec risk",
        data_integrity="batch record intact", containment_risk="low",
        systems=[SystemInScope(name="press-01 PLC", validated=True)]), actor=QA, now=at(1))
    assess(store, rid, at(1))  # a containment decision needs them (lifecycle.GUARDS)
    store.update_field(rid, "affected_lots", [
        {"lot_id": "LOT-7", "controller": "press-01", "started_at": at(0).isoformat()}],
        actor=QA, reason="MES lot genealogy", now=at(1))
    store.update_field(rid, "containment", {"release_freeze": True, "evidence_preserved": True},
                       actor=QA, reason="freeze", now=at(1))
    store.execute(PlaceHold(record_id=rid, lot_id="LOT-7", reason="hold"), actor=QA, now=at(1))
    store.execute(RecordRootCause(
        record_id=rid, reason="RCA",
        five_whys=[WhyAnswer(answer=a) for a in ("setpoint changed", "engineer logged in",
                                                 "password shared")],
        fishbone={FishboneCategory.SECURITY_CONTROLS: ["no MFA on EWS"],
                  FishboneCategory.PEOPLE: ["training"]}), actor=QA, now=at(2))
    store.execute(AddCapaAction(record_id=rid, action=CapaAction.model_validate(ACTION),
                                reason="plan"), actor=QA, now=at(2))
    record = store.get_record(rid)
    assert record.log.root_cause == "shared engineering password"
    assert record.impact.systems[0].validated
    assert record.affected_lots[0].lot_id == "LOT-7"
    assert store.lot_holds(rid)[0].lot_id == "LOT-7" and record.containment.release_freeze
    assert record.rca.fishbone[FishboneCategory.SECURITY_CONTROLS] == ["no MFA on EWS"]
    assert record.capa_actions[0].original_due.isoformat() == "2026-03-20"
    entry = next(e for e in store.trail(rid) if e.field == "log.root_cause")
    assert (entry.actor, entry.reason, entry.old, entry.new) == (
        "qa.lee", "RCA concluded", '""', '"shared engineering password"')
    assert store.verify_trail().ok


def test_bad_updates_are_refused_and_change_nothing(store: RecordStore, rid: str) -> None:
    before = store.trail()
    with pytest.raises(InvalidUpdate, match=r"'state'.*transition"):
        store.update_field(rid, "state", "closed", actor=QA, reason="x", now=at(1))
    with pytest.raises(InvalidUpdate, match="no key 'nope'"):
        store.update_field(rid, "log.nope", "x", actor=QA, reason="x", now=at(1))
    with pytest.raises(InvalidUpdate, match="capa_actions"):
        store.update_field(rid, "capa_actions", [{"id": "A1"}], actor=QA, reason="x", now=at(1))
    with pytest.raises(InvalidUpdate, match="fishbone"):
        store.update_field(rid, "rca.fishbone", {"luck": ["x"]}, actor=QA, reason="x", now=at(1))
    with pytest.raises(ReasonRequired):
        store.update_field(rid, "log.owner", "qa", actor=QA, reason="", now=at(1))
    assert store.trail() == before


@pytest.mark.parametrize(("section", "value", "typed"), [
    ("capa_actions", [{**ACTION, "status": "done"}], "AddCapaAction, UpdateCapaAction"),
    ("impact", {"product_impact": "none", "contributions": [
        {"function": "security", "author": "qa.lee", "signed_off": True}]},
     "AssessImpact .the summary., ContributeImpact"),
    ("rca", {"five_whys": ["why"]}, "RecordRootCause"),
    ("effectiveness_check", {"performed_by": "someone.else", "performed_at": "2026-03-01T00:00:00Z",
                             "effective": True, "against_criteria": "x"}, "CheckEffectiveness"),
])
def test_a_whole_section_with_its_own_steps_is_refused_naming_them(
    store: RecordStore, rid: str, section: str, value: object, typed: str,
) -> None:
    """UpdateSection would skip the typed commands' guards: a CAPA action created done, a
    contribution in another function's name."""
    before = store.trail()
    with pytest.raises(InvalidUpdate, match=f"field '{section}'.*use {typed}"):
        store.execute(UpdateSection(record_id=rid, field=section, value=value, reason="x"),
                      actor=QA, now=at(1))
    assert store.trail() == before
    record = store.get_record(rid)
    assert (record.capa_actions, record.impact.contributions, record.rca.five_whys,
            record.effectiveness_check) == ([], [], [], None)


@pytest.mark.parametrize(("field", "value", "typed"), [
    ("impact.contributions",
     [{"function": "security", "author": "soc.kim", "signed_off": True}], "ContributeImpact"),
    ("impact.notifications",
     [{"audience": "regulator", "notify": False, "rationale": "none",
       "decided_by": "someone.else"}], "DecideNotification"),
    ("rca.validated_by", ["nobody"], "RecordRootCause"),
    ("capa_actions.0", {**ACTION, "status": "done"}, "AddCapaAction, UpdateCapaAction"),
    ("containment.lot_holds", [{"lot_id": "LOT-7", "held_at": T0.isoformat(),
                                "held_by": "someone.else"}], "PlaceHold or ReleaseHold"),
    ("containment.decisions", [{"kind": "release_freeze", "status": "in_effect",
                                "decided_by": "someone.else"}],
     "RecordDecision or UpdateDecision"),
])
def test_a_key_with_its_own_step_is_refused_naming_it(
    store: RecordStore, rid: str, field: str, value: object, typed: str,
) -> None:
    """One key of a section is no back door: written through UpdateSection, a contribution
    would be signed off in another's name and a notification decided by someone who did not."""
    before = store.trail()
    with pytest.raises(InvalidUpdate, match=f"field '{field}' is not written by UpdateSection"
                                            f".*use {typed}"):
        store.execute(UpdateSection(record_id=rid, field=field, value=value, reason="x"),
                      actor=QA, now=at(1))
    assert store.trail() == before
    record = store.get_record(rid)
    assert (record.impact.contributions, record.impact.notifications,
            record.rca.validated_by, record.capa_actions, record.containment.lot_holds,
            record.containment.decisions) == ([], [], [], [], [], [])


def test_a_whole_containment_write_leaves_holds_and_decisions_to_their_steps(
    store: RecordStore, rid: str,
) -> None:
    """A whole ``containment`` value carries the lot holds and decisions too: writing it could
    release a hold in nobody's name or hold a lot in someone else's. Only a write that keeps
    them as they are goes through."""
    assess(store, rid, at(1))
    store.execute(PlaceHold(record_id=rid, lot_id="LOT-7", reason="hold"), actor=QA, now=at(1))
    held = store.get_record(rid).containment
    before = store.trail()
    forged = {"lot_holds": [{**held.lot_holds[0].model_dump(mode="json"), "held_by": "qa.boss"}]}
    for value, key in (({"release_freeze": True}, "lot_holds"), (forged, "lot_holds"),
                       ({"lot_holds": held.lot_holds, "decisions": [
                           {"kind": "release_freeze", "decided_by": "qa.boss"}]}, "decisions")):
        with pytest.raises(InvalidUpdate, match=f"would change containment.{key}.*use "):
            store.update_field(rid, "containment", value, actor=QA, reason="x", now=at(2))
    assert store.trail() == before and store.get_record(rid).containment == held
    kept = {**held.model_dump(mode="json"), "release_freeze": True}
    record = store.update_field(rid, "containment", kept, actor=QA, reason="freeze", now=at(2))
    assert record.containment.release_freeze
    assert [(h.lot_id, h.held_by) for h in record.containment.lot_holds] == [("LOT-7", "qa.lee")]


def test_unchanged_value_writes_no_entry(store: RecordStore, rid: str) -> None:
    store.update_field(rid, "log.owner", "qa-lead", actor=QA, reason="owner", now=at(1))
    count = len(store.trail())
    store.update_field(rid, "log.owner", "qa-lead", actor=QA, reason="owner", now=at(2))
    assert len(store.trail()) == count


def test_final_records_are_not_edited(store: RecordStore, rid: str) -> None:
    drive(store, rid, State.TRIAGE)
    store.transition(rid, "cancelled", actor=QA, reason="dup", now=at(3))
    with pytest.raises(InvalidUpdate, match="cancelled"):
        store.update_field(rid, "log.owner", "x", actor=QA, reason="x", now=at(4))


def test_evidence_keeps_raw_event_and_context(store: RecordStore, rid: str) -> None:
    (ev,) = store.get_record(rid).evidence
    assert ev.context == {"lot": "LOT-7", "recipe": "R-12"}
    assert ev.raw["event_id"] == "ev-1"
    assert orjson.loads(event(1).to_json()) == ev.raw


def test_publisher_follows_trail_and_lot_suggestions(store: RecordStore, rid: str) -> None:
    store.record_events([(event(2, minutes=3), classified())], now=T0)
    (lot,) = store.suggest_affected_lots(rid)
    assert lot.lot_id == "LOT-7" and lot.controller == "press-01"
    assess(store, rid, at(1))
    head = store.trail()[-1].seq
    store.execute(PlaceHold(record_id=rid, lot_id="LOT-7", reason="hold"), actor=QA, now=at(1))
    (entry,) = store.trail_since(head)
    assert entry.field == "containment.lot_holds" and "LOT-7" in (entry.new or "")
    assert store.trail_since(entry.seq) == []


def test_ticket_status_is_tracked_and_follows_closure(store: RecordStore, rid: str) -> None:
    store.update_field(rid, "ticket.status", "in_progress", actor=SOC, reason="analyst on it",
                       now=at(1))
    record = store.get_record(rid)
    assert record.ticket is not None and record.ticket.status == "in_progress"
    with pytest.raises(InvalidUpdate, match=r"ticket\.status"):
        store.update_field(rid, "ticket.status", "done?", actor=SOC, reason="x", now=at(1))
    store.transition(rid, "cancelled", actor=QA, reason="test asset",
                     now=at(2))
    record = store.get_record(rid)
    assert record.ticket is not None and record.ticket.status == "cancelled"
    assert store.trail(rid)[-1].field == "ticket.status"
