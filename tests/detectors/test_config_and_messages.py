"""The sample classifier config, and the messages the classifier reads and writes. Pure."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.alerts import alert_for, record_event
from detectors.config import load_classifier_config
from detectors.criteria import classify, load_criteria
from detectors.errors import BadMessage, ClassifierConfigError
from detectors.health import dead_letter_reason
from detectors.messages import dead_letter, parse_event, parse_heartbeat
from detectors.records import RecordOutcome
from tests.support.events import WORKDAY, make_event

CONFIG = Path(__file__).parents[2] / "config"


def test_the_sample_config_loads_with_every_section() -> None:
    config = load_classifier_config(CONFIG / "classifier.yaml")
    assert config.classifier.criteria == (CONFIG / "criteria.yaml").resolve()
    assert config.topics.heartbeat == "otwatch.agents.heartbeat"
    assert config.integrity.silence_after_s == 35 and config.integrity.start_from == "latest"
    assert load_criteria(config.classifier.criteria).burst.min_controllers == 3


def test_the_fetch_wait_reaches_the_consumer_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    config = load_classifier_config(CONFIG / "classifier.yaml")
    # the embedded broker answers a waiting fetch only when the wait ends: keep it short
    assert config.classifier.fetch_kwargs()["fetch_max_wait_ms"] == 50
    bad = tmp_path / "classifier.yaml"
    bad.write_text("classifier:\n  fetch_max_wait_ms: 0\n")
    with pytest.raises(ClassifierConfigError, match=r"classifier\.fetch_max_wait_ms"):
        load_classifier_config(bad)


def test_an_unknown_key_is_refused_with_the_fix(tmp_path: Path) -> None:
    bad = tmp_path / "classifier.yaml"
    bad.write_text("integrity:\n  silence_s: 3\n")
    with pytest.raises(ClassifierConfigError, match=r"integrity\.silence_s.*remove or correct"):
        load_classifier_config(bad)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param(None, "empty message", id="tombstone"),
        pytest.param(b"{nope", "not JSON", id="garbage"),
        pytest.param(b"[1]", "not a JSON object", id="array"),
        pytest.param(b'{"schema": "other/1"}', "unknown schema 'other/1'", id="schema"),
        pytest.param(b'{"schema": "otwatch.change/1", "event_id": "x"}',
                     "invalid otwatch.change/1 message", id="fields"),
    ],
)
def test_bad_messages_carry_a_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(BadMessage, match=reason):
        parse_event(raw)


def test_a_heartbeat_without_sent_at_is_refused() -> None:
    raw = (b'{"schema": "otwatch.heartbeat/1", "agent_id": "a", "version": "1", '
           b'"controllers_up": 1, "controllers_total": 1, "spool_depth": 0, "last_seq": 0}')
    with pytest.raises(BadMessage, match="sent_at"):
        parse_heartbeat(raw)


def test_alert_and_record_event_name_the_record_and_attack_technique() -> None:
    event = make_event()
    assert parse_event(event.to_json()) == event
    cls = classify(event, load_criteria(CONFIG / "criteria.yaml"))
    outcome = RecordOutcome(event_id=event.event_id, record_id="NC-1", ticket_id="SEC-1",
                            created=True, duplicate=False)
    alert = alert_for(event, cls, outcome)
    assert alert["attack_techniques"] == ["T0836"]
    assert alert["attack_framework"] == "MITRE ATT&CK for ICS"
    assert (alert["alert_id"], alert["master_record"]) == (event.event_id, "NC-1")
    body = record_event(event, cls, outcome, WORKDAY)
    assert (body["type"], body["ticket_id"]) == ("opened", "SEC-1")
    dead = dead_letter(reason="not JSON: x", topic="t", partition=0, offset=3, key=None,
                       value=b"\xff", at=WORKDAY)
    assert dead["value_head"] == "\ufffd" and dead["offset"] == 3


@pytest.mark.parametrize(
    ("reason", "label"),
    [("not JSON: unexpected character", "not JSON"),
     ("unknown schema 'x/1'; this classifier reads y", "unknown schema"),
     ("unknown schema None; this classifier reads y", "unknown schema")],
)
def test_dead_letter_reasons_become_bounded_labels(reason: str, label: str) -> None:
    assert dead_letter_reason(reason) == label


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1.5e309"])
def test_a_number_too_large_for_a_float_is_refused_as_on_the_careful_way(number: str) -> None:
    # pydantic's own parser reads it as infinity; the evidence must load with orjson again,
    # which refuses it: the event is dead-lettered, named, whichever way it is parsed
    plain = make_event().to_json().decode()
    raw = plain.replace('"new_value":230.0', f'"new_value":{number}')
    assert raw != plain
    with pytest.raises(BadMessage, match="not JSON: number is infinity"):
        parse_event(raw.encode())
