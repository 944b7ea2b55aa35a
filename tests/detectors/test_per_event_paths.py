"""The classifier's per-event paths (burst correlator, classification, alert and record event
encoders, the caches of the last instant) say what their plain spelling says: each is compared
here with that spelling, written out as the contract reads, not with the product's shortcuts."""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.alert_formats.native import MAX_DESCRIPTION_CHARS, alert_value
from detectors.alerts import alert_json, record_event_json
from detectors.classification import Classification
from detectors.correlate import (
    NO_CONTEXT,
    BurstCorrelator,
    BurstSettings,
    EventContext,
    per_instant,
)
from detectors.criteria import SiteCalendar, _off_hours, classify
from detectors.records import RecordOutcome
from tests.detectors.test_alerts import CRITERIA, _published
from tests.detectors.test_correlate import change
from tests.support.events import WORKDAY, make_event


def _plain_alert(event: Any, cls: Classification, outcome: RecordOutcome) -> dict[str, Any]:
    """``otwatch.alert/1`` as its fields are defined, one by one."""
    description = cls.description
    if len(description) > MAX_DESCRIPTION_CHARS:
        description = description[: MAX_DESCRIPTION_CHARS - 1] + "\u2026"
    return {
        "schema": "otwatch.alert/1", "alert_id": event.event_id,
        "time": event.detected_at.isoformat(), "classification": cls.kind.value,
        "severity": cls.severity.value, "rules_fired": list(cls.rules_fired),
        "criteria_version": cls.criteria_version,
        "attack_techniques": list(cls.attack_techniques),
        "attack_framework": "MITRE ATT&CK for ICS", "correlation_key": cls.correlation_key,
        "master_record": outcome.record_id, "security_ticket": outcome.ticket_id,
        "new_record": outcome.created, "site": event.site, "line": event.line,
        "controller": event.controller.id, "controller_validated": event.controller.validated,
        "tag": event.tag.name, "change_kind": event.change_kind.value,
        "verdict": event.verdict.value, "old_value": alert_value(event.old_value),
        "new_value": alert_value(event.new_value), "actor": event.actor,
        "agent_id": event.agent_id, "description": description,
    }


def _plain_description(event: Any, explanation: str) -> str:
    unit = f" {event.tag.unit}" if event.tag.unit else ""
    reason = f": {event.verdict_reason}" if event.verdict_reason else ""
    what = (f"{event.change_kind.value.replace('_', ' ')} on {event.controller.id}/"
            f"{event.tag.name}: {event.old_value!r} -> {event.new_value!r}{unit} "
            f"({event.verdict.value}{reason})")
    return f"{what}. {explanation}" if explanation else what


@settings(max_examples=300, deadline=None)
@given(_published(), st.booleans(), st.integers(0, 3000))
def test_messages_are_the_bytes_of_their_plain_spelling(
    published: tuple[Any, Classification, RecordOutcome], opened: bool, extra: int
) -> None:
    event, cls, outcome = published
    cls = cls.model_copy(update={"description": cls.description + "x" * extra})
    assert alert_json(event, cls, outcome) == orjson.dumps(_plain_alert(event, cls, outcome))
    at = "2026-11-23T10:00:00.000001+00:00"
    assert orjson.loads(record_event_json(event, cls, outcome, at, opened=opened)) == {
        "schema": "otwatch.record-event/1", "type": "opened" if opened else "evidence_attached",
        "record_id": outcome.record_id, "ticket_id": outcome.ticket_id,
        "classification": cls.kind.value, "severity": cls.severity.value,
        "rules_fired": list(cls.rules_fired), "criteria_version": cls.criteria_version,
        "correlation_key": cls.correlation_key, "event_id": event.event_id,
        "site": event.site, "line": event.line, "controller": event.controller.id,
        "tag": event.tag.name, "at": at,
    }


def test_non_finite_and_large_values_still_go_the_careful_way() -> None:
    event = make_event(old_value=math.nan, new_value=-math.inf)
    alert = orjson.loads(alert_json(event, classify(event, CRITERIA), OUTCOME))
    assert (alert["old_value"], alert["new_value"]) == (
        {"$float": "NaN"}, {"$float": "-Infinity"})
    big = make_event(old_value="x" * 5000, new_value=7)
    alert = orjson.loads(alert_json(big, classify(big, CRITERIA), OUTCOME))
    assert set(alert["old_value"]) == {"$truncated"} and alert["new_value"] == 7


OUTCOME = RecordOutcome("e", "NC-1", "SEC-1", True, False)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([None, "", "degC"]), st.text(max_size=40), st.booleans(),
    st.floats() | st.integers() | st.text(max_size=10),
)
def test_the_description_reads_as_its_plain_spelling(
    unit: str | None, reason: str, routine: bool, value: object
) -> None:
    """With and without a unit, a reason, and a rule that fired (a routine change: none)."""
    routine_fields: dict[str, Any] = {"tag": {"unit": unit, "critical_to_quality": False},
                                      "actor": "j.doe", "controller": {"validated": False}}
    event = make_event(verdict_reason=reason, new_value=value,
                       **(routine_fields if routine else {"tag": {"unit": unit}}))
    cls = classify(event, CRITERIA)
    fired = {r.id: r.description for r in CRITERIA.rules}
    explanation = fired[cls.rules_fired[0]] if cls.rules_fired else ""
    assert routine is not bool(cls.rules_fired)
    assert cls.description == _plain_description(event, explanation)


def test_the_window_is_the_settings_own_at_its_edge() -> None:
    """Exactly ``window_s`` after the first event is inside the episode; a microsecond more
    starts another (each correlator with its own settings)."""
    for window_s in (10.0, 2.5):
        bursts: BurstCorrelator[int] = BurstCorrelator(
            BurstSettings(min_controllers=3, window_s=window_s))
        bursts.offer(change("press-01", 0), 1, now=WORKDAY)
        assert bursts.offer(change("press-02", window_s), 2, now=WORKDAY) == []
        released = bursts.offer(change("press-03", window_s + 1e-6), 3, now=WORKDAY)
        assert [(ctx, tok) for _, ctx, tok in released] == [(NO_CONTEXT, 2), (NO_CONTEXT, 3)]
        assert bursts.due(now=WORKDAY + timedelta(seconds=window_s)) == []
        assert len(bursts.due(now=WORKDAY + timedelta(seconds=window_s + 1e-6))) == 0
        assert bursts.held_tokens() == []


def test_a_bursts_context_follows_its_controller_count() -> None:
    """Later events of a burst share one context while the count stays, and get a new one
    with the count when another controller joins."""
    bursts: BurstCorrelator[int] = BurstCorrelator(BurstSettings(min_controllers=3))
    for i, name in enumerate(["a", "b", "c"]):
        bursts.offer(change(name, i * 0.1), i, now=WORKDAY)
    again = [bursts.offer(change(name, 0.5), 9, now=WORKDAY)[0][1] for name in "abc"]
    assert again[0] is again[1] is again[2] and again[0].burst_controllers == 3
    fourth = bursts.offer(change("d", 0.6), 10, now=WORKDAY)
    assert [ctx for _, ctx, _ in fourth] == [EventContext(
        burst_controllers=4, correlation_key="plant-1/a", line_key="burst:plant-1/line-1")]
    assert bursts.offer(change("a", 0.7), 11, now=WORKDAY)[0][1] is fourth[0][1]


_ZONES = st.sampled_from([UTC, ZoneInfo("Europe/Berlin"), timezone(timedelta(hours=5, minutes=30)),
                          None])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1)), _ZONES,
                          st.sampled_from([0, 1]), st.integers(1, 3)), max_size=30))
def test_the_last_instant_answers_as_the_uncached_call(
    asked: list[tuple[datetime, Any, int, int]]
) -> None:
    """Runs of one instant (as a poll's events come), then another: in other zones, the other
    fold of a wall time, an equal instant written in UTC, a naive time; each its own answer."""
    calendar = SiteCalendar(timezone="Europe/Berlin", working_days=["mon", "tue"],
                            working_hours_start=time(6, 0), working_hours_end=time(22, 30))
    texts, off_hours = per_instant(lambda m, z, f: m.isoformat()), per_instant(
        _off_hours(calendar))
    for naive, zone, fold, repeat in asked:
        at = naive.replace(tzinfo=zone, fold=fold)
        for same in [at] * repeat + [at.replace(fold=1 - fold), at.astimezone(UTC), at]:
            assert texts(same) == same.isoformat()
            if same.tzinfo is not None:
                assert off_hours(same) == calendar.is_off_hours(same)


def test_the_ambiguous_hour_of_one_zone_object_is_told_apart() -> None:
    """02:30 twice on the night Berlin leaves summer time: equal datetimes of one zone object,
    an hour apart; asked one after the other, each gets its own answer."""
    first = datetime(2025, 10, 26, 2, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    second = first.replace(fold=1)
    assert first == second
    calendar = SiteCalendar(timezone="UTC", working_days=["sun"],
                            working_hours_start=time(0, 0), working_hours_end=time(1, 0))
    off_hours = per_instant(_off_hours(calendar))
    assert [off_hours(first), off_hours(second), off_hours(first)] == [False, True, False]
    asked: list[datetime] = []

    def text(moment: datetime, zone: object, fold: int) -> str:
        asked.append(moment)
        return moment.isoformat()

    texts = per_instant(text)
    assert [texts(first), texts(second)] == [first.isoformat(), second.isoformat()]
    assert texts(second.replace()) == second.isoformat() and asked == [first, second]


def test_an_alerts_time_follows_its_events_instant() -> None:
    """One instant after another, and back: each alert carries its own event's time."""
    events = [make_event(detected_at=WORKDAY + timedelta(microseconds=us))
              for us in (0, 0, 1, 1, 0)]
    times = [orjson.loads(alert_json(e, classify(e, CRITERIA), OUTCOME))["time"] for e in events]
    assert times == [e.detected_at.isoformat() for e in events]
    assert len(set(times)) == 2
