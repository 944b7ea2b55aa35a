"""What the classifier publishes is bounded and keeps NaN (issue 14: a size limit on what is
published; NaN is not invisible): an alert stays small whatever the event held, and a NaN or
an infinity reads as itself, never as ``null``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson

from detectors.alerts import alert_json, record_event_json
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
