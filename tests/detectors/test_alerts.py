"""What the classifier publishes is bounded and keeps NaN (issue 14: a size limit on what is
published; NaN is not invisible): an alert stays small whatever the event held, and a NaN or
an infinity reads as itself, never as ``null``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.contract import ChangeKind, Verdict
from detectors.alerts import alert_for, alert_json, record_event, record_event_json
from detectors.criteria import classify, load_criteria
from detectors.records import RecordOutcome
from tests.support.events import make_event

CRITERIA = load_criteria(Path(__file__).parents[2] / "config" / "criteria.yaml")
OUTCOME = RecordOutcome(event_id="e", record_id="NC-1", ticket_id="SEC-1", created=True,
                        duplicate=False)


def test_nan_and_infinities_keep_their_identity_in_the_alert() -> None:
    event = make_event(old_value=float("nan"), new_value=float("-inf"))
    alert = orjson.loads(alert_json(event, classify(event, CRITERIA), OUTCOME))
    assert alert["old_value"] == {"$float": "NaN"}
    assert alert["new_value"] == {"$float": "-Infinity"}


def test_an_alert_stays_small_whatever_the_event_held() -> None:
    huge = "x" * 900_000
    event = make_event(old_value={"recipe": huge}, new_value=huge)
    cls = classify(event, CRITERIA)
    body = alert_json(event, cls, OUTCOME)
    assert len(body) < 32 * 1024
    alert = orjson.loads(body)
    truncated = alert["new_value"]["$truncated"]
    assert truncated["length"] == len(orjson.dumps(huge)) and truncated["head"] == "x" * 256
    assert len(alert["description"]) == 2000 and alert["description"].endswith("\u2026")
    assert len(record_event_json(event, cls, OUTCOME, "2026-11-23T10:00:00Z",
                                 opened=True)) < 4096


def test_an_alerts_time_is_its_events_own_detection_time_as_written() -> None:
    """The alert's time is the event's detection time in its own offset, also when an equal
    instant in another offset (or the same fields in another offset) was alerted before."""
    at = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    times = [at, at.astimezone(timezone(timedelta(hours=2))), at.replace(microsecond=7),
             at.replace(tzinfo=timezone(timedelta(hours=-5))), at, at.replace(tzinfo=None)]
    written = []
    for detected in times:
        event = make_event(detected_at=detected, occurred_at=detected)
        alert = orjson.loads(alert_json(event, classify(event, CRITERIA), OUTCOME))
        assert alert["time"] == event.detected_at.isoformat()
        written.append(alert["time"])
    assert written[:2] == ["2026-11-23T10:00:00+00:00", "2026-11-23T12:00:00+02:00"]


# The encoders write each message from one dict built per event (`alert_json`,
# `record_event_json`); the public dicts (`alert_for`, `record_event`) are what other formats
# and the SIEM tests read. Whatever the event held, the bytes are those of the public dict.
_names = st.text(min_size=1, max_size=30)
_values = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
           | st.floats() | st.text(max_size=300)
           | st.dictionaries(st.text(max_size=8), st.floats() | st.integers(), max_size=3))
_offsets = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])


@st.composite
def _published(draw: st.DrawFn) -> tuple[Any, Any, RecordOutcome]:
    detected = draw(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1),
                                 timezones=_offsets))
    event = make_event(
        controller={"id": draw(_names), "validated": draw(st.booleans())},
        tag={"name": draw(_names)}, old_value=draw(_values), new_value=draw(_values),
        actor=draw(st.none() | _names), verdict_reason=draw(st.text(max_size=200)),
        change_kind=draw(st.sampled_from(list(ChangeKind))),
        verdict=draw(st.sampled_from(list(Verdict))), detected_at=detected, occurred_at=detected,
    )
    cls = classify(event, CRITERIA)
    outcome = RecordOutcome(
        event_id=event.event_id, record_id=draw(_names), ticket_id=draw(st.none() | _names),
        created=draw(st.booleans()), duplicate=draw(st.booleans()),
    )
    return event, cls, outcome


@settings(max_examples=300, deadline=None)
@given(_published(), st.booleans())
def test_encoded_messages_are_the_bytes_of_their_public_dicts(
    published: tuple[Any, Any, RecordOutcome], opened: bool
) -> None:
    event, cls, outcome = published
    assert alert_json(event, cls, outcome) == orjson.dumps(alert_for(event, cls, outcome))
    at = "2026-11-23T10:00:00.000001+00:00"
    body = {**record_event(event, cls, outcome, at),
            "type": "opened" if opened else "evidence_attached"}
    assert record_event_json(event, cls, outcome, at, opened=opened) == orjson.dumps(body)
    alert = alert_for(event, cls, outcome)
    assert type(alert["rules_fired"]) is list and type(alert["attack_techniques"]) is list
    assert type(record_event(event, cls, outcome, at)["rules_fired"]) is list
