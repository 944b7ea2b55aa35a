"""Follow-up with a frozen clock: reminders for actions and follow-up dates coming due,
escalation rules, overdue counts; the e-mails received by a real local SMTP server
(aiosmtpd on a free loopback port)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from prometheus_client import REGISTRY

from detectors.classification import Severity
from detectors.records import (
    AddCapaAction,
    CapaAction,
    EscalationRule,
    MoveCapaDue,
    RecordStore,
    WorkflowSettings,
)
from detectors.records.escalation import escalations, overdue_counts, reminders
from detectors.records.notify import follow_up
from detectors.records.risk import EmailSettings
from tests.records.lifecycle_steps import at
from tests.records.people import QA, SOC
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event

RULES = (
    EscalationRule(name="critical-open", min_severity="critical", older_than_h=24,
                   notify=("approver",)),
    EscalationRule(name="actions-late", overdue_by_d=7, notify=("quality", "security")),
)


@pytest.fixture
def records(store: RecordStore) -> list[str]:
    """A high record with actions due 2026-03-10 (A1) and 2026-03-20 (A2), and a critical
    record with none; both opened at T0 (2026-03-02 08:00)."""
    high, critical = (o.record_id or "" for o in store.record_events(
        [(event(1), classified(key="a")),
         (event(2, controller="press-02"), classified(key="b", severity=Severity.CRITICAL))],
        now=T0))
    for action_id, due in (("A1", date(2026, 3, 10)), ("A2", date(2026, 3, 20))):
        store.execute(AddCapaAction(record_id=high, reason="plan", action=CapaAction(
            id=action_id, description=f"action {action_id}", owner="soc.kim",
            domain="security", original_due=due, current_due=due)), actor=SOC, now=at(1))
    return [high, critical]


def test_reminders_escalations_and_overdue_on_a_frozen_clock(
    store: RecordStore, records: list[str],
) -> None:
    high, critical = records
    settings = WorkflowSettings(escalation=RULES, remind_days_before=3)
    found = store.list_records()
    now = T0 + timedelta(days=5)  # 2026-03-07: A1 due in 3 days, A2 in 13
    assert [(r.to_user, r.record_id, r.what, r.text(now.date())) for r in
            reminders(found, settings, now)] == [
        ("soc.kim", high, "CAPA action A1 (action A1)",
         f"{high}: CAPA action A1 (action A1) is due in 3 days (2026-03-10)")]
    assert [(e.rule, e.record_id) for e in escalations(found, settings, now)] == [
        ("critical-open", critical)]
    assert overdue_counts(found, now)[Severity.HIGH] == 0
    later = T0 + timedelta(days=18)  # 2026-03-20: A1 10 days late, A2 due today
    texts = [r.text(later.date()) for r in reminders(found, settings, later)]
    assert texts == [f"{high}: CAPA action A1 (action A1) is overdue by 10 days (2026-03-10)",
                     f"{high}: CAPA action A2 (action A2) is due today (2026-03-20)"]
    fired = {(e.rule, e.record_id): e.why for e in escalations(found, settings, later)}
    assert set(fired) == {("critical-open", critical), ("actions-late", high)}
    assert fired[("actions-late", high)] == "a CAPA action overdue by 10 d (rule: over 7 d)"
    assert overdue_counts(found, later) == {"low": 0, "medium": 0, "high": 1, "critical": 0}
    store.execute(MoveCapaDue(record_id=high, action_id="A1", to_due=date(2026, 3, 31),
                              approved_by="qa.lee", reason="supplier late"), actor=QA,
                  now=later)
    moved = store.list_records()
    assert overdue_counts(moved, later)[Severity.HIGH] == 0
    assert ("actions-late", high) not in {(e.rule, e.record_id)
                                          for e in escalations(moved, settings, later)}
    (change,) = store.get_record(high).capa_actions[0].due_changes
    assert (change.from_due, change.to_due, change.approved_by, change.changed_by) == (
        date(2026, 3, 10), date(2026, 3, 31), "qa.lee", "qa.lee")


class _Inbox:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[_Inbox, int]]:
    from simulators.broker import free_port

    inbox, port = _Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_the_reminders_and_escalations_arrive_by_e_mail(
    store: RecordStore, records: list[str], smtp: tuple[_Inbox, int],
) -> None:
    inbox, port = smtp
    high, critical = records
    settings = WorkflowSettings(escalation=RULES, email=EmailSettings(
        host="127.0.0.1", port=port, sender="otwatch@plant.example",
        people={"soc.kim": "soc.kim@plant.example"},
        roles={"approver": ("approvers@plant.example",), "quality": ("qa@plant.example",)}))
    done = follow_up(store.list_records(), settings, T0 + timedelta(days=18))
    got = {tuple(to): message_from_bytes(content) for _, to, content in inbox.received}
    assert set(got) == {("approvers@plant.example",), ("qa@plant.example",),
                        ("soc.kim@plant.example",)}
    body = got[("soc.kim@plant.example",)].get_payload()
    assert f"reminder: {high}: CAPA action A1 (action A1) is overdue by 10 days" in body
    approvers = got[("approvers@plant.example",)]
    assert approvers["From"] == "otwatch@plant.example"
    assert (f"escalation critical-open: {critical}: open for 432 h (rule: over 24 h)"
            in approvers.get_payload())
    assert done.no_address == ["role security"]
    gauge = REGISTRY.get_sample_value("otwatch_records_capa_actions_overdue",
                                      {"record_severity": "high"})
    assert gauge == 1.0


@pytest.mark.integration
async def test_the_follow_up_is_published_on_the_records_topic(
    store: RecordStore, records: list[str], broker: Any,
) -> None:
    from agent.kafka.settings import KafkaSettings
    from detectors.records.follow_up_topic import follow_up_messages, publish_follow_up
    from tests.delivery.kafka_read import read_topics

    high, critical = records
    now = T0 + timedelta(days=18)
    settings = WorkflowSettings(escalation=RULES)
    found = store.list_records()
    messages = follow_up_messages(reminders(found, settings, now),
                                  escalations(found, settings, now), now)
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, enable_idempotence=False,
                          request_timeout_ms=5_000)
    assert await publish_follow_up(kafka, "otwatch.records", messages) == 4
    got = await read_topics(broker.bootstrap, ["otwatch.records"], until_count=4, limit_s=10)
    values = sorted((r.value for r in got), key=lambda v: v["message_id"])
    assert [(v["kind"], v["record_id"]) for v in values] == [
        ("escalation", high), ("escalation", critical), ("reminder", high), ("reminder", high)]
    assert values[0]["rule"] == "actions-late" and values[1]["roles"] == ["approver"]
    assert values[2]["text"] == f"{high}: CAPA action A1 (action A1) is overdue by 10 days " \
                                "(2026-03-10)"
    assert {v["schema"] for v in values} == {"otwatch.records.follow_up/1"}
    assert {r.key for r in got} == {high.encode(), critical.encode()}
