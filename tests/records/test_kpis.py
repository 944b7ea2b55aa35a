"""KPIs from the trail, on a hand-built history whose answers are worked out by hand."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from detectors.records import (
    AddCapaAction,
    CapaAction,
    InvalidUpdate,
    MoveCapaDue,
    RecordStore,
    State,
    UpdateCapaAction,
)
from detectors.records.kpis import compute
from tests.records.lifecycle_steps import at, drive
from tests.records.people import QA, SOC
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event


def _action(aid: str, due: str) -> CapaAction:
    return CapaAction.model_validate({"id": aid, "description": aid, "owner": "o",
                                      "domain": "quality", "original_due": due,
                                      "current_due": due})


def build_history(store: RecordStore) -> None:
    """A: detected 60 s after the change, contained +2 h, closed +7 h, action A1 done on time.
    B: detected after 120 s, contained; B1 due 03-01 done 03-03 (late, though rescheduled),
    B2 due 03-05 open (late at 03-10), B3 due 04-01 open (not yet due).
    C: the same controller and tag as A, opened after A closed: A recurred."""
    (a,) = store.record_events([(event(1), classified(key="a"))], now=T0 + timedelta(seconds=30))
    (b,) = store.record_events(
        [(event(2, controller="press-02", tag="Speed"), classified(key="b"))],
        now=T0 + timedelta(seconds=90),
    )
    drive(store, a.record_id or "", State.CLOSED)                    # 1 h .. 7 h
    drive(store, b.record_id or "", State.CONTAINMENT)               # 1 h, 2 h
    rid_b = b.record_id or ""
    for aid, due in (("B1", "2026-03-01"), ("B2", "2026-03-05"), ("B3", "2026-04-01")):
        store.execute(AddCapaAction(record_id=rid_b, action=_action(aid, due), reason="plan"),
                      actor=QA, now=at(3))
    store.execute(MoveCapaDue(record_id=rid_b, action_id="B1", to_due=date(2026, 4, 1),
                              approved_by=SOC.user_id, reason="rescheduled"), actor=QA, now=at(4))
    store.execute(UpdateCapaAction(record_id=rid_b, action_id="B1", changes={"status": "done"},
                                   reason="B1 done"), actor=QA, now=at(30))
    (c,) = store.record_events([(event(3, minutes=8 * 60), classified(key="a2"))],
                               now=at(8) + timedelta(seconds=30))
    assert c.created


def test_kpis_on_hand_built_history(store: RecordStore) -> None:
    build_history(store)
    kpis = store.kpis(T0.replace(day=10))
    assert kpis.records == 3
    assert kpis.mean_time_to_detect_s == pytest.approx((60 + 120 + 60) / 3)
    assert kpis.mean_time_to_contain_s == pytest.approx(((7200 - 30) + (7200 - 90)) / 2)
    assert kpis.mean_time_to_close_s == pytest.approx(7 * 3600 - 30)
    assert (kpis.closed_with_corrective_action, kpis.recurred) == (1, 1)
    assert kpis.recurrence_rate == pytest.approx(1.0)
    assert (kpis.actions_due, kpis.actions_done_by_original_due) == (3, 1)
    assert kpis.pct_actions_done_by_original_due == pytest.approx(100 / 3)


def test_kpis_ignore_editable_fields(store: RecordStore) -> None:
    """An action's original due date cannot be rewritten later to move the KPI: neither
    through the whole CAPA section nor through the action's own update."""
    build_history(store)
    rid_b = "NC-2026-000002"
    with pytest.raises(InvalidUpdate, match="UpdateCapaAction"):
        store.update_field(rid_b, "capa_actions", [
            {**_action("B1", "2026-03-31").model_dump(mode="json"), "status": "done"}],
            actor=QA, reason="tidy", now=at(40))
    with pytest.raises(InvalidUpdate, match="original due date is kept"):
        store.execute(UpdateCapaAction(record_id=rid_b, action_id="B2",
                                       changes={"original_due": "2026-03-31"}, reason="tidy"),
                      actor=QA, now=at(40))
    kpis = store.kpis(T0.replace(day=10))
    assert (kpis.actions_due, kpis.actions_done_by_original_due) == (3, 1)


def test_empty_trail_has_no_means() -> None:
    kpis = compute([], T0)
    assert kpis.records == 0 and kpis.mean_time_to_detect_s is None
    assert kpis.recurrence_rate is None and kpis.pct_actions_done_by_original_due is None


def test_kpis_as_prometheus_gauges(store: RecordStore) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from detectors.records.metrics import KpiCollector

    build_history(store)
    registry = CollectorRegistry()
    registry.register(KpiCollector(store, clock=lambda: T0.replace(day=10)))
    text = generate_latest(registry).decode()
    assert "otwatch_records_mean_time_to_detect_seconds 80.0" in text
    assert "otwatch_records_recurrence_ratio 1.0" in text
    assert "otwatch_records_actions_on_time_percent 33.3" in text
