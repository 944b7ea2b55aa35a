"""The workflow as typed commands: one transaction each, permission, guards, version, trail."""

from __future__ import annotations

from datetime import date

import orjson
import pytest

from detectors.records import (
    GRANTS,
    Actor,
    AddCapaAction,
    AddComment,
    CapaAction,
    ConcurrentUpdate,
    ContainmentDecision,
    ContributeImpact,
    DecisionKind,
    DecisionStatus,
    InvalidUpdate,
    Permission,
    PermissionDenied,
    PlaceHold,
    ReasonRequired,
    RecordDecision,
    RecordNotFound,
    RecordStore,
    ReleaseHold,
    SetTicketStatus,
    State,
    Transition,
    TransitionRefused,
    UnknownActor,
    UpdateCapaAction,
    UpdateDecision,
    UpdateSection,
)
from detectors.records.kpis import compute
from detectors.records.tables import capa_actions, lot_holds
from tests.records.lifecycle_steps import ACTION, assess, at
from tests.records.people import OPERATOR, QA, SOC, VIEWER
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event


@pytest.fixture
def rid(store: RecordStore) -> str:
    (out,) = store.record_events([(event(1), classified())], now=T0)
    return out.record_id or ""


@pytest.fixture
def assessed(store: RecordStore, rid: str) -> str:
    """A record whose impact assessment has the signed-off quality and security
    contributions a containment decision needs (`lifecycle.GUARDS`)."""
    assess(store, rid, T0)
    return rid


def test_the_table_has_the_seven_roles_and_every_permission_is_granted() -> None:
    assert set(GRANTS) == {"viewer", "operator", "quality", "security", "approver", "admin",
                           "integration"}
    assert set().union(*GRANTS.values()) == set(Permission)
    assert GRANTS["viewer"] == {Permission.VIEW_RECORDS}
    assert GRANTS["admin"] == {Permission.MANAGE_USERS}
    assert GRANTS["integration"] == {Permission.VIEW_RECORDS, Permission.SYNC_TICKETS}
    assert Permission.SIGN in GRANTS["approver"] and Permission.SIGN not in GRANTS["quality"]


def test_hold_and_release_a_lot_with_version_and_trail(store: RecordStore, assessed: str) -> None:
    rid = assessed
    v1 = store.get_record(rid).version
    held = store.execute(PlaceHold(record_id=rid, lot_id="LOT-7", reason="made under the change",
                                   expected_version=v1), actor=QA, now=at(1))
    assert held.version == v1 + 1
    (hold,) = held.containment.lot_holds
    assert (hold.lot_id, hold.held_by, hold.held_at, hold.released_at) == (
        "LOT-7", "qa.lee", at(1), None)
    released = store.execute(ReleaseHold(record_id=rid, lot_id="LOT-7", reason="lab: in spec"),
                             actor=QA, now=at(2))
    (hold,) = released.containment.lot_holds
    assert (hold.released_at, hold.released_by) == (at(2), "qa.lee")
    entries = [e for e in store.trail(rid) if e.field == "containment.lot_holds"]
    assert [e.reason for e in entries] == ["made under the change", "lab: in spec"]
    assert orjson.loads(entries[1].old or "") == orjson.loads(entries[0].new or "")
    assert store.verify_trail().ok


def test_the_publisher_sees_holds_placed_by_commands(store: RecordStore, assessed: str) -> None:
    rid = assessed
    from detectors.containment import lot_changes

    store.execute(PlaceHold(record_id=rid, lot_id="LOT-7", reason="hold"), actor=QA, now=at(1))
    store.execute(ReleaseHold(record_id=rid, lot_id="LOT-7", reason="ok"), actor=QA, now=at(2))
    changes = [c for e in store.trail(rid) for c in lot_changes(e)]
    assert [(c.lot_id, c.action, c.at, c.released_by) for c in changes] == [
        ("LOT-7", "hold", at(1), None), ("LOT-7", "release", at(2), "qa.lee")]


def test_lots_on_hold_are_rows_the_worklist_can_query(store: RecordStore, assessed: str) -> None:
    rid = assessed
    store.execute(PlaceHold(record_id=rid, lot_id="LOT-7", reason="hold"), actor=QA, now=at(1))
    store.execute(PlaceHold(record_id=rid, lot_id="LOT-8", reason="hold"), actor=QA, now=at(1))
    store.execute(ReleaseHold(record_id=rid, lot_id="LOT-8", reason="ok"), actor=QA, now=at(2))
    with store.database.read() as conn:
        on_hold = conn.execute(lot_holds.select().where(lot_holds.c.released_at.is_(None)))
        assert [(r.record_id, r.lot_id) for r in on_hold] == [(rid, "LOT-7")]


def test_hold_guards_refuse_and_change_nothing(store: RecordStore, assessed: str) -> None:
    rid = assessed
    store.execute(PlaceHold(record_id=rid, lot_id="LOT-7", reason="hold"), actor=QA, now=at(1))
    before = (store.get_record(rid), store.trail())
    with pytest.raises(InvalidUpdate, match="already on hold"):
        store.execute(PlaceHold(record_id=rid, lot_id="LOT-7", reason="x"), actor=QA, now=at(2))
    with pytest.raises(InvalidUpdate, match=r"'LOT-9' is not on hold .*on hold: LOT-7"):
        store.execute(ReleaseHold(record_id=rid, lot_id="LOT-9", reason="x"), actor=QA,
                      now=at(2))
    with pytest.raises(ReasonRequired):
        store.execute(ReleaseHold(record_id=rid, lot_id="LOT-7", reason=" "), actor=QA,
                      now=at(2))
    with pytest.raises(RecordNotFound):
        store.execute(PlaceHold(record_id="NC-2026-999999", lot_id="L", reason="x"), actor=QA,
                      now=at(2))
    assert (store.get_record(rid), store.trail()) == before


def test_a_stale_version_is_refused_naming_record_and_versions(
    store: RecordStore, rid: str,
) -> None:
    read = store.get_record(rid)
    store.update_field(rid, "log.owner", "qa.lee", actor=QA, reason="owner", now=at(1))
    trail = store.trail()
    with pytest.raises(ConcurrentUpdate) as info:
        store.execute(PlaceHold(record_id=rid, lot_id="LOT-7", reason="hold",
                                expected_version=read.version), actor=QA, now=at(2))
    assert (info.value.record_id, info.value.expected, info.value.current) == (
        rid, read.version, read.version + 1)
    assert f"expected version {read.version}" in str(info.value) and rid in str(info.value)
    with pytest.raises(ConcurrentUpdate):
        store.transition(rid, "triage", actor=QA, reason="r", now=at(2),
                         expected_version=read.version)
    assert store.trail() == trail


def test_a_change_that_changes_nothing_keeps_the_version(store: RecordStore, rid: str) -> None:
    first = store.update_field(rid, "log.owner", "x", actor=QA, reason="r", now=at(1))
    again = store.update_field(rid, "log.owner", "x", actor=QA, reason="r", now=at(2),
                               expected_version=first.version)
    assert again.version == first.version


def test_permission_comes_from_the_table(store: RecordStore, rid: str) -> None:
    trail = store.trail()
    with pytest.raises(PermissionDenied, match=r"'op\.smith' may not hold or release lots: "
                                               r"that needs the quality role"):
        store.execute(PlaceHold(record_id=rid, lot_id="LOT-7", reason="x"), actor=OPERATOR,
                      now=at(1))
    with pytest.raises(PermissionDenied, match="edit a record's sections"):
        store.update_field(rid, "log.owner", "x", actor=OPERATOR, reason="r", now=at(1))
    with pytest.raises(TransitionRefused, match="quality or the security role"):
        store.execute(Transition(record_id=rid, to=State.TRIAGE, reason="x"), actor=OPERATOR,
                      now=at(1))
    assert store.trail() == trail


def test_capa_actions_as_rows_and_the_kpis_still_count_them(
    store: RecordStore, rid: str,
) -> None:
    action = CapaAction.model_validate(ACTION)
    store.execute(AddCapaAction(record_id=rid, action=action, reason="plan"), actor=SOC,
                  now=at(1))
    with pytest.raises(InvalidUpdate, match="already has CAPA action 'A1'"):
        store.execute(AddCapaAction(record_id=rid, action=action, reason="again"), actor=SOC,
                      now=at(1))
    with pytest.raises(InvalidUpdate, match="no CAPA action 'A9'"):
        store.execute(UpdateCapaAction(record_id=rid, action_id="A9", changes={}, reason="x"),
                      actor=SOC, now=at(1))
    with pytest.raises(InvalidUpdate, match="current_due"):
        store.execute(UpdateCapaAction(record_id=rid, action_id="A1", reason="x",
                                       changes={"current_due": "soon"}), actor=SOC, now=at(1))
    record = store.execute(UpdateCapaAction(record_id=rid, action_id="A1", reason="done",
                                            changes={"status": "done"}), actor=SOC, now=at(2))
    assert record.capa_actions[0].status == "done"
    assert record.capa_actions[0].original_due == date(2026, 3, 20)
    with store.database.read() as conn:
        mine = conn.execute(capa_actions.select().where(capa_actions.c.owner == "sec-lead"))
        assert [(r.action_id, r.status) for r in mine] == [("A1", "done")]
    kpis = compute(store.trail(), at(3))
    assert (kpis.actions_due, kpis.actions_done_by_original_due) == (1, 1)


def test_containment_decisions_and_impact_contributions(store: RecordStore, rid: str) -> None:
    store.execute(ContributeImpact(record_id=rid, function="quality", assessment="lots at risk",
                                   reason="QA view"), actor=QA, now=at(3))
    store.execute(ContributeImpact(record_id=rid, function="security", risk="lateral movement",
                                   signed_off=True, reason="SOC view"), actor=SOC, now=at(3))
    record = store.execute(ContributeImpact(record_id=rid, function="quality", signed_off=True,
                                            assessment="lots at risk: LOT-7", reason="signed"),
                           actor=QA, now=at(4))
    assert [(c.function, c.author, c.signed_off) for c in record.impact.contributions] == [
        ("quality", "qa.lee", True), ("security", "soc.kim", True)]
    store.execute(RecordDecision(record_id=rid, reason="freeze", decision=ContainmentDecision(
        kind=DecisionKind.RELEASE_FREEZE, status=DecisionStatus.IN_EFFECT, owner="qa.lee",
        note="no release of line A output")), actor=QA, now=at(1))
    store.execute(RecordDecision(record_id=rid, reason="isolate", decision=ContainmentDecision(
        kind=DecisionKind.SECURITY_ACTION, owner="soc.kim", note="isolate the EWS")),
        actor=SOC, now=at(1))
    record = store.execute(UpdateDecision(record_id=rid, index=1, status=DecisionStatus.IN_EFFECT,
                                          reason="done"), actor=SOC, now=at(2))
    assert [(d.kind, d.status, d.decided_by) for d in record.containment.decisions] == [
        ("release_freeze", "in_effect", "qa.lee"), ("security_action", "in_effect", "soc.kim")]
    with pytest.raises(InvalidUpdate, match="no containment decision 5"):
        store.execute(UpdateDecision(record_id=rid, index=5, status=DecisionStatus.LIFTED,
                                     reason="x"), actor=QA, now=at(2))
    fields = [e.field for e in store.trail(rid)]
    assert fields.count("containment.decisions") == 3
    assert fields.count("impact.contributions") == 3
    assert store.verify_trail().ok


def test_ticket_status_and_section_commands_match_the_wrappers(
    store: RecordStore, rid: str,
) -> None:
    store.execute(SetTicketStatus(record_id=rid, status="in_progress", reason="on it"),
                  actor=SOC, now=at(1))
    record = store.execute(UpdateSection(record_id=rid, field="log.root_cause", value="password",
                                         reason="RCA"), actor=QA, now=at(2))
    assert record.ticket is not None and record.ticket.status == "in_progress"
    assert record.log.root_cause == "password"
    assert [e.field for e in store.trail(rid)][-2:] == ["ticket.status", "log.root_cause"]


def test_final_records_take_no_command(store: RecordStore, rid: str) -> None:
    store.transition(rid, "cancelled", actor=QA, reason="dup", now=at(1))
    with pytest.raises(InvalidUpdate, match="cancelled"):
        store.execute(PlaceHold(record_id=rid, lot_id="L", reason="x"), actor=QA, now=at(2))


def test_roles_are_the_users_tables_not_the_callers(store: RecordStore, rid: str) -> None:
    """An Actor that claims roles its user does not hold acts with the held ones only."""
    trail = store.trail()
    claims_quality = Actor("op.smith", {"quality", "security", "admin"})
    with pytest.raises(PermissionDenied, match="hold or release lots"):
        store.execute(PlaceHold(record_id=rid, lot_id="LOT-7", reason="x"),
                      actor=claims_quality, now=at(1))
    with pytest.raises(UnknownActor, match="no such user"):
        store.execute(PlaceHold(record_id=rid, lot_id="LOT-7", reason="x"),
                      actor=Actor("mallory", {"quality"}), now=at(1))
    assert store.trail() == trail


def test_a_disabled_user_acts_no_more(store: RecordStore, rid: str) -> None:
    from detectors.identity import set_disabled

    with store.database.write() as conn:
        set_disabled(conn, "qa.lee", True, by="admin.ada", now=at(1))
    with pytest.raises(UnknownActor, match="disabled"):
        store.update_field(rid, "log.owner", "x", actor=QA, reason="r", now=at(2))


def test_an_operator_comments_and_reports_a_viewer_only_reads(
    store: RecordStore, rid: str,
) -> None:
    store.execute(AddComment(record_id=rid, reason="line A ran LOT-7 at 215 degC"),
                  actor=OPERATOR, now=at(1))
    store.execute(ContributeImpact(record_id=rid, function="production",
                                   assessment="LOT-7 ran 20 min", reason="production view"),
                  actor=OPERATOR, now=at(1))
    entry = store.trail(rid)[-2]
    assert (entry.field, entry.actor, entry.new) == (
        "comment", "op.smith", '"line A ran LOT-7 at 215 degC"')
    with pytest.raises(PermissionDenied, match="comment on a record"):
        store.execute(AddComment(record_id=rid, reason="hello"), actor=VIEWER, now=at(2))
