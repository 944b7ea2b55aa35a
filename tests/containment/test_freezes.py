"""Release freezes on ``otwatch.containment``: a release-freeze decision coming into effect
and lifted, as the relay translates the trail entries a real store wrote."""

from __future__ import annotations

from pathlib import Path

from detectors.containment import containment_messages
from detectors.records import (
    ContainmentDecision,
    DecisionStatus,
    RecordDecision,
    UpdateDecision,
    open_store,
)
from tests.records.lifecycle_steps import assess, at
from tests.records.people import QA, SOC, enrol
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event


def test_a_freeze_in_effect_then_lifted_is_published_twice(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "records.db")) as store:
        store.migrate()
        enrol(store, T0)
        (out,) = store.record_events([(event(1), classified())], now=T0)
        rid = out.record_id or ""
        assess(store, rid, at(1))
        start = store.trail()[-1].seq
        store.execute(RecordDecision(record_id=rid, reason="freeze line A", decision=(
            ContainmentDecision(kind="release_freeze", status="proposed", owner="qa.lee"))),
            actor=QA, now=at(2))
        store.execute(RecordDecision(record_id=rid, reason="isolate", decision=(
            ContainmentDecision(kind="security_action", status="in_effect"))),
            actor=SOC, now=at(2))
        for status in (DecisionStatus.IN_EFFECT, DecisionStatus.LIFTED):
            store.execute(UpdateDecision(record_id=rid, index=0, status=status,
                                         reason=f"freeze {status.value}"), actor=QA, now=at(3))
        headers = store.record_headers([rid])
        sent = [m for e in store.trail_since(start)
                for m in containment_messages(e, headers[e.record_id])]
    values = [m.value for m in sent]
    assert [(v["action"], v["decision"], v["lot"], v["line"], v["reason"]) for v in values] == [
        ("freeze", 0, None, "line-a", "freeze in_effect"),
        ("unfreeze", 0, None, "line-a", "freeze lifted")]
    assert values[0]["schema"] == "otwatch.containment/1"
    assert len({v["message_id"] for v in values}) == 2
    assert {m.key for m in sent} == {rid.encode()}
