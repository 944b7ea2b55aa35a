"""Security tickets are for joint and security records, not quality-only ones (issue 19): a
quality-only record opens with no ``SEC-…`` id anywhere (row, ticket table, trail, exports, the
classifier's alert and record event, the records CLI), gets one when security evidence joins
it (a ``security_ticket`` trail entry by the classifier), and verify vouches for both; on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from sqlalchemy import text

from detectors.alert_formats.cef import cef_for
from detectors.alert_formats.native import alert_for
from detectors.alert_formats.ocsf import finding_for
from detectors.alerts import record_event
from detectors.classification import ClassKind, Severity
from detectors.record_changes import record_change_messages
from detectors.records import (
    AddComment,
    InvalidUpdate,
    RecordStore,
    SetTicketStatus,
    TrailCursor,
    TrailRelay,
)
from detectors.records.checkpoints import Interval
from detectors.records.export import render
from detectors.records.tamper import verify_store
from detectors.records.trail import CLASSIFIER
from detectors.records_cli import format_table
from tests.records.people import SOC
from tests.records.test_relay import MemorySink
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event

QUALITY, SECURITY = ClassKind.QUALITY_ONLY, ClassKind.SECURITY_ONLY


def tampered(store: RecordStore) -> list[str]:
    report = verify_store(store.database, key=None, every=Interval())
    return [p for p in report.problems if not p.startswith("checkpoint")]


def test_only_joint_and_security_records_get_a_security_ticket(store: RecordStore) -> None:
    quality, joint, security = store.record_events([
        (event(1), classified(QUALITY, key="q")),
        (event(2, controller="press-02"), classified(key="j")),
        (event(3, controller="press-03"), classified(SECURITY, key="s")),
    ], now=T0)
    assert quality.record_id is not None and quality.ticket_id is None
    assert (joint.ticket_id, security.ticket_id) == ("SEC-2026-000001", "SEC-2026-000002")
    record = store.get_record(quality.record_id)
    assert record.security_ticket is None and record.ticket is None
    opening = store.trail(quality.record_id)[0]
    assert orjson.loads(opening.new or "{}")["security_ticket"] is None
    for outcome in (joint, security):
        ticketed = store.get_record(outcome.record_id or "")
        assert ticketed.ticket is not None and ticketed.ticket.id == outcome.ticket_id
        assert ticketed.security_ticket == outcome.ticket_id
    with store.database.read() as conn:
        held = conn.execute(text("SELECT record_id FROM tickets ORDER BY id")).scalars().all()
    assert held == [joint.record_id, security.record_id]
    assert tampered(store) == []


def test_a_quality_only_record_shows_no_ticket_in_exports_alerts_and_events(
    store: RecordStore,
) -> None:
    decided = classified(QUALITY, key="q")
    (outcome,) = store.record_events([(event(1), decided)], now=T0)
    record = store.get_record(outcome.record_id or "")
    trail = store.trail(record.id)
    for fmt in ("json", "csv", "html"):
        assert "SEC-" not in render(record, trail, fmt), fmt
    assert orjson.loads(render(record, trail, "json"))["record"]["security_ticket"] is None
    assert "no security ticket (quality-only record)" in render(record, trail, "html")
    assert record_event(event(1), decided, outcome, T0)["ticket_id"] is None
    assert alert_for(event(1), decided, outcome)["security_ticket"] is None
    assert finding_for(event(1), decided, outcome)["unmapped"]["security_ticket"] is None
    cef = cef_for(event(1), decided, outcome).decode()
    assert "cs4Label=securityTicket" in cef and "SEC-" not in cef
    row = format_table([record]).splitlines()[1].split()
    assert row[:5] == [record.id, "quality_only", "high", "detected", "-"]


@pytest.mark.parametrize("same_batch", [True, False], ids=["same-batch", "later-batch"])
def test_security_evidence_opens_the_ticket_of_a_quality_record(
    store: RecordStore, same_batch: bool,
) -> None:
    first = (event(1), classified(QUALITY, key="q"))
    second = (event(2, minutes=1), classified(SECURITY, Severity.CRITICAL, key="q"))
    if same_batch:
        opened, joined = store.record_events([first, second], now=T0 + timedelta(minutes=2))
    else:
        (opened,) = store.record_events([first], now=T0)
        assert store.get_record(opened.record_id or "").security_ticket is None
        (joined,) = store.record_events([second], now=T0 + timedelta(minutes=2))
    rid = opened.record_id or ""
    assert joined.record_id == rid and joined.ticket_id == "SEC-2026-000001"
    record = store.get_record(rid)
    assert (record.classification, record.security_ticket) == ("joint", "SEC-2026-000001")
    assert record.ticket is not None
    assert (record.ticket.severity, record.ticket.status) == (Severity.CRITICAL, "open")
    assert {"verdict:unapproved", "change:setpoint_change"} <= set(record.ticket.indicators)
    (entry,) = [e for e in store.trail(rid) if e.field == "security_ticket"]
    assert entry.actor == CLASSIFIER and entry.old is None
    assert orjson.loads(entry.new or "{}") == {
        "id": "SEC-2026-000001", "severity": "critical", "indicators": record.ticket.indicators}
    assert "now joint" in entry.reason
    # Later evidence changes the new ticket like any other, and verify follows it all.
    store.record_events([(event(3, minutes=2), classified(key="q"))],
                        now=T0 + timedelta(minutes=3))
    assert store.get_record(rid).security_ticket == "SEC-2026-000001"
    assert tampered(store) == []


def test_a_quality_only_record_has_no_ticket_status_to_set(store: RecordStore) -> None:
    (outcome,) = store.record_events([(event(1), classified(QUALITY, key="q"))], now=T0)
    rid = outcome.record_id or ""
    before = store.trail(rid)
    with pytest.raises(InvalidUpdate, match="quality-only and has no security ticket"):
        store.execute(SetTicketStatus(record_id=rid, status="in_progress", reason="on it"),
                      actor=SOC, now=T0 + timedelta(minutes=1))
    assert store.trail(rid) == before and store.get_record(rid).ticket is None


def test_verify_names_a_ticket_the_trail_never_opened_and_one_that_is_gone(
    store: RecordStore,
) -> None:
    quality, joint = store.record_events([
        (event(1), classified(QUALITY, key="q")),
        (event(2, controller="press-02"), classified(key="j")),
    ], now=T0)
    with store.database.write() as conn:
        conn.execute(text("INSERT INTO tickets (id, record_id, severity, status, indicators) "
                          "VALUES ('SEC-2026-000777', :rid, 'high', 'open', '[]')"),
                     {"rid": quality.record_id})
    problems = tampered(store)
    assert len(problems) == 1 and "SEC-2026-000777" in problems[0]
    assert "a security ticket the trail never opened" in problems[0]
    with store.database.write() as conn:
        conn.execute(text("DELETE FROM tickets"))
        conn.execute(text("UPDATE records SET security_ticket = NULL"))
    problems = tampered(store)
    assert any(joint.record_id in p and "security_ticket" in p for p in problems), problems
    assert any(joint.record_id in p and "ticket SEC-2026-000001" in p and "gone" in p
               for p in problems), problems
    assert not any(f"record {quality.record_id}," in p for p in problems), problems


async def test_the_records_topic_carries_no_ticket_until_security_evidence_opens_one(
    store: RecordStore, store_target: tuple[str, str | None],
) -> None:
    target, schema = store_target
    cursor = TrailCursor.open(target, "otwatch.records", schema=schema)
    sink = MemorySink()
    relay = TrailRelay(store, cursor, record_change_messages, sink, name="record-changes")
    (opened,) = store.record_events([(event(1), classified(QUALITY, key="q"))], now=T0)
    rid = opened.record_id or ""
    store.execute(AddComment(record_id=rid, reason="looked at it"), actor=SOC,
                  now=T0 + timedelta(minutes=1))
    while await relay.relay_batch():
        pass
    store.record_events([(event(2, minutes=2), classified(SECURITY, key="q"))],
                        now=T0 + timedelta(minutes=3))
    while await relay.relay_batch():
        pass
    cursor.close()
    by_field = {m.value["field"]: m.value for m in sink.sent}
    assert (by_field["comment"]["ticket_id"], by_field["comment"]["classification"]) == (
        None, "quality_only")
    ticket = by_field["security_ticket"]
    assert (ticket["type"], ticket["ticket_id"], ticket["classification"]) == (
        "field_updated", "SEC-2026-000001", "joint")
    assert ticket["new"]["id"] == "SEC-2026-000001" and ticket["actor"] == CLASSIFIER
