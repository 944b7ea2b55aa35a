"""Every record change on ``otwatch.records`` through the real embedded broker: state,
field update, comment, ticket link and update, external reference, each keyed by record id
with its schema version and the full new value; nothing for the classifier's own entries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.kafka.settings import KafkaSettings
from detectors.record_changes import SCHEMA, RecordChangePublisher, change_type
from detectors.records import (
    AddComment,
    AddExternalReference,
    LinkTicket,
    RecordStore,
    ReportTicketState,
    TrailCursor,
    TrailEntry,
    open_store,
)
from detectors.records.commands import Actor
from simulators.broker import EmbeddedBroker
from tests.delivery.kafka_read import read_topics
from tests.records.people import QA, enrol
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event
from tests.tickets.test_outbox import add_service_users

TOPIC = "otwatch.records"
SVC = Actor("svc-jira")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[str, RecordStore]]:
    target = str(tmp_path / "records.db")
    store = open_store(target)
    store.migrate()
    enrol(store, T0)
    add_service_users(store)
    yield target, store
    store.close()


def change_record(store: RecordStore) -> str:
    outcome, = store.record_events([(event(1), classified())], now=T0)
    rid = outcome.record_id
    assert rid is not None
    store.transition(rid, "triage", actor=QA, reason="seen", now=T0)
    store.update_field(rid, "log.root_cause", "setpoint typed by hand", actor=QA,
                       reason="first finding", now=T0)
    store.execute(AddComment(record_id=rid, reason="asked the shift lead"), actor=QA, now=T0)
    store.execute(LinkTicket(record_id=rid, system="jira", remote_id="10001", key="SEC-1",
                             url="https://acme.atlassian.net/browse/SEC-1", state="To Do",
                             reason="ticket opened in jira"), actor=SVC, now=T0)
    store.execute(ReportTicketState(record_id=rid, system="jira", state="In Progress",
                                    reported_by="j.soc@acme.example", reason="moved"),
                  actor=SVC, now=T0)
    store.execute(AddExternalReference(record_id=rid, kind="deviation", system="TrackWise",
                                       ref_id="DEV-2026-0042",
                                       url="https://qms.example/DEV-2026-0042",
                                       reason="deviation report opened"), actor=QA, now=T0)
    return rid


@pytest.mark.e2e
async def test_every_change_is_an_event_keyed_by_record(
    db: tuple[str, RecordStore], broker: EmbeddedBroker
) -> None:
    target, store = db
    rid = change_record(store)
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, enable_idempotence=False,
                          request_timeout_ms=5_000)
    publisher = RecordChangePublisher(store, TrailCursor.open(target, TOPIC), kafka,
                                      interval_s=0.1)
    await publisher.start()
    try:
        got = await read_topics(broker.bootstrap, [TOPIC], until_count=6, limit_s=20)
    finally:
        await publisher.stop()
    values: list[dict[str, Any]] = [r.value for r in sorted(got, key=lambda r: r.offset)]
    assert [v["type"] for v in values] == ["state_changed", "field_updated", "commented",
                                           "ticket_linked", "ticket_updated", "reference_added"]
    assert {r.key for r in got} == {rid.encode()}
    assert all(v["schema"] == SCHEMA and v["record_id"] == rid for v in values)
    assert values[0]["new"] == "triage" and values[0]["actor"] == "qa.lee"
    assert values[1]["field"] == "log.root_cause"
    assert values[4]["new"]["state"] == "In Progress" and values[4]["actor"] == "svc-jira"
    assert values[4]["new"]["reported_by"] == "j.soc@acme.example"
    assert values[5]["new"] == [{"kind": "deviation", "system": "TrackWise",
                                 "ref_id": "DEV-2026-0042",
                                 "url": "https://qms.example/DEV-2026-0042",
                                 "added_at": values[5]["at"], "added_by": "qa.lee"}]
    assert len({v["message_id"] for v in values}) == 6


def test_the_classifiers_own_entries_are_not_sent_again() -> None:
    def entry(field: str, old: str | None = None) -> TrailEntry:
        return TrailEntry(seq=1, record_id="NC-1", actor="a", at="t", field=field, old=old,
                          new="1", reason="r", prev_hash="0", hash="1")
    assert change_type(entry("record")) is None and change_type(entry("evidence")) is None
    assert change_type(entry("signature")) == "signed"
    assert change_type(entry("external_ticket", old="{}")) == "ticket_updated"
    assert change_type(entry("ticket.status")) == "field_updated"
