"""Linked tickets and external references as audited commands, on both dialects: who may,
what the trail holds (the full new value), and bad input refused with nothing changed."""

from __future__ import annotations

import orjson
import pytest

from detectors.identity import add_user
from detectors.records import (
    AddComment,
    AddExternalReference,
    InvalidUpdate,
    LinkTicket,
    PermissionDenied,
    RecordStore,
    ReportTicketState,
    Transition,
    TransitionRefused,
)
from detectors.records.commands import Actor
from detectors.records.models import State
from tests.records.people import OPERATOR, QA, SOC
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event

SVC = Actor("svc-thehive")


@pytest.fixture
def rid(store: RecordStore) -> str:
    with store.database.write() as conn:
        add_user(conn, "svc-thehive", "TheHive connector", ["integration"], password_hash=None,
                 by="test", now=T0)
    outcome, = store.record_events([(event(1), classified())], now=T0)
    assert outcome.record_id is not None
    return outcome.record_id


def link(rid: str, **changes: str) -> LinkTicket:
    values = {"system": "thehive", "remote_id": "~41", "key": "#7",
              "url": "https://th.example/cases/~41/details", "state": "New"} | changes
    return LinkTicket(record_id=rid, reason="ticket opened in thehive", **values)


def test_a_link_is_audited_with_the_whole_ticket_and_shown_on_the_record(
    store: RecordStore, rid: str
) -> None:
    before = store.get_record(rid).version
    store.execute(link(rid), actor=SVC, now=T0)
    store.execute(link(rid), actor=SVC, now=T0)  # the same again changes nothing
    entries = [e for e in store.trail(rid) if e.field == "external_ticket"]
    assert len(entries) == 1 and entries[0].actor == "svc-thehive" and entries[0].old is None
    assert orjson.loads(entries[0].new or "") == {
        "system": "thehive", "remote_id": "~41", "key": "#7",
        "url": "https://th.example/cases/~41/details", "state": "New", "assignee": ""}
    row, = store.linked_tickets(rid)
    assert (row["key"], row["url"], row["state"]) == ("#7", "https://th.example/cases/~41/"
                                                      "details", "New")
    assert store.get_record(rid).version == before + 1 and store.verify_trail().ok


def test_people_may_not_link_tickets_and_the_service_user_may_do_nothing_else(
    store: RecordStore, rid: str
) -> None:
    with pytest.raises(PermissionDenied):
        store.execute(link(rid), actor=QA, now=T0)
    with pytest.raises(TransitionRefused, match="quality or the security role"):
        store.execute(Transition(record_id=rid, to=State.TRIAGE, reason="x"), actor=SVC, now=T0)
    with pytest.raises(PermissionDenied):
        store.execute(AddComment(record_id=rid, reason="x"), actor=SVC, now=T0)
    assert store.linked_tickets(rid) == [] and store.get_record(rid).state is State.DETECTED


def test_a_state_report_names_the_remote_actor_and_works_on_a_closed_record(
    store: RecordStore, rid: str
) -> None:
    store.execute(link(rid), actor=SVC, now=T0)
    store.execute(Transition(record_id=rid, to=State.CANCELLED, reason="false alarm"),
                  actor=QA, now=T0)
    store.execute(ReportTicketState(record_id=rid, system="thehive", state="Resolved",
                                    assignee="j.soc", reported_by="j.soc@acme.example",
                                    reason="closed in TheHive"), actor=SVC, now=T0)
    entry = store.trail(rid)[-1]
    assert entry.field == "external_ticket" and "j.soc@acme.example" in entry.reason
    assert orjson.loads(entry.new or "")["state"] == "Resolved"
    with pytest.raises(InvalidUpdate, match="no jira ticket"):
        store.execute(ReportTicketState(record_id=rid, system="jira", state="Done",
                                        reported_by="x", reason="r"), actor=SVC, now=T0)


def test_external_references_are_audited_and_bad_ones_refused(
    store: RecordStore, rid: str
) -> None:
    ref = AddExternalReference(record_id=rid, kind="change_control", system="SAP QM",
                               ref_id="CC-2026-117", url="https://qms.example/CC-2026-117",
                               reason="covered by change control CC-2026-117")
    store.execute(ref, actor=SOC, now=T0)
    trail_len = len(store.trail(rid))
    for bad, message in [
        (ref, "already refers"),
        (AddExternalReference(record_id=rid, kind="memo", system="x", ref_id="1",  # type: ignore[arg-type]
                              reason="r"), "not one of"),
        (AddExternalReference(record_id=rid, kind="deviation", system="x", ref_id="1",
                              url="javascript:alert(1)", reason="r"), "not an http"),
        (AddExternalReference(record_id=rid, kind="deviation", system=" ", ref_id="1",
                              reason="r"), "needs its 'system'"),
    ]:
        with pytest.raises(InvalidUpdate, match=message):
            store.execute(bad, actor=QA, now=T0)
    with pytest.raises(PermissionDenied):
        store.execute(AddExternalReference(record_id=rid, kind="deviation", system="x",
                                           ref_id="2", reason="r"), actor=OPERATOR, now=T0)
    assert len(store.trail(rid)) == trail_len
    entry = store.trail(rid)[-1]
    assert entry.field == "external_refs" and orjson.loads(entry.old or "") == []
    assert store.external_references(rid) == orjson.loads(entry.new or "")
