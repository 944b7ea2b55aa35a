"""OCSF Detection Findings, validated against the real OCSF JSON schemas (tests/siem/ocsf/:
1.1.0, the version otwatch writes, and 1.8.0), and read back into the native alert exactly."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from detectors.alert_formats import (
    UnreadableAlert,
    alert_json,
    encoder_for,
    finding_json,
    read_alert,
)
from detectors.classification import Classification
from detectors.criteria import classify, load_criteria
from detectors.records import RecordOutcome
from tests.support.events import make_event

HERE = Path(__file__).parent
VERSIONS = ["1.1.0", "1.8.0"]
CRITERIA = load_criteria(HERE.parents[1] / "config" / "criteria.yaml")
OPENED = RecordOutcome(event_id="e", record_id="NC-1", ticket_id="SEC-1", created=True,
                       duplicate=False)
ATTACHED = RecordOutcome(event_id="e", record_id="NC-1", ticket_id="SEC-1", created=False,
                         duplicate=False)


@cache
def validator(version: str) -> Draft202012Validator:
    schema = json.loads((HERE / "ocsf" / f"detection_finding-{version}-host.schema.json")
                        .read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$id"].endswith(f"/{version}/classes/detection_finding?profiles=host")
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def problems(finding: dict[str, Any], version: str) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
            for e in validator(version).iter_errors(finding)]


# (name, event overrides, outcome, classification overrides)
CASES: list[tuple[str, dict[str, Any], RecordOutcome, dict[str, Any]]] = [
    ("record opened, OPC UA at an IP", {}, OPENED, {}),
    ("evidence attached, actor known", {"actor": "j.doe"}, ATTACHED, {}),
    ("Modbus at a host name", {"controller": {"id": "press-01", "protocol": "modbus",
                                              "endpoint": "press-01.cell-3.plant:502"}},
     OPENED, {}),
    ("serial endpoint (no host)", {"controller": {"endpoint": "/dev/ttyUSB0"}}, OPENED, {}),
    ("NaN and infinity", {"old_value": float("nan"), "new_value": float("-inf")}, OPENED, {}),
    ("a huge recipe", {"old_value": {"recipe": "x" * 900_000}, "new_value": "y" * 70_000},
     OPENED, {}),
    ("program change, several rules and techniques",
     {"change_kind": "program_change", "tag": {"kind": "program", "name": "main"},
      "verdict": "approval_invalid"}, OPENED, {}),
    ("no rule, no technique, no correlation key, no ticket", {},
     RecordOutcome(event_id="e", record_id="NC-2", ticket_id=None, created=True,
                   duplicate=False),
     {"rules_fired": (), "attack_techniques": (), "correlation_key": "",
      "severity": "critical"}),
    ("hostile texts", {"controller": {"id": 'plc|1\\="x"\n'}, "tag": {"name": "sp\r\n\t|="},
                       "actor": "eve\u202e\x07"}, OPENED, {"description": "a\nb|c=d\\e"}),
]


def case(overrides: dict[str, Any], cls_overrides: dict[str, Any]) -> tuple[Any, Any]:
    event = make_event(**overrides)
    cls = classify(event, CRITERIA)
    if cls_overrides:
        cls = Classification(**{**cls.model_dump(), **cls_overrides})
    return event, cls


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("name", "overrides", "outcome", "cls_overrides"), CASES,
                         ids=[c[0] for c in CASES])
def test_every_finding_validates_against_the_ocsf_schema(
    name: str, overrides: dict[str, Any], outcome: RecordOutcome,
    cls_overrides: dict[str, Any], version: str,
) -> None:
    event, cls = case(overrides, cls_overrides)
    finding = orjson.loads(finding_json(event, cls, outcome))
    assert problems(finding, version) == []
    assert (finding["class_uid"], finding["category_uid"]) == (2004, 2)
    assert finding["type_uid"] == 200400 + finding["activity_id"]
    assert finding["activity_id"] == (1 if outcome.created else 2)
    assert finding["metadata"]["version"] == "1.1.0"
    assert finding["finding_info"]["uid"] == event.event_id
    assert [a["technique"]["uid"] for a in finding["finding_info"].get("attacks", [])] == list(
        cls.attack_techniques)


@pytest.mark.parametrize(("name", "overrides", "outcome", "cls_overrides"), CASES,
                         ids=[c[0] for c in CASES])
def test_a_finding_reads_back_as_the_native_alert(
    name: str, overrides: dict[str, Any], outcome: RecordOutcome, cls_overrides: dict[str, Any]
) -> None:
    event, cls = case(overrides, cls_overrides)
    native = orjson.loads(alert_json(event, cls, outcome))
    assert read_alert(finding_json(event, cls, outcome)) == native
    assert read_alert(alert_json(event, cls, outcome)) == native


def test_the_controller_is_the_device_and_its_address_an_observable() -> None:
    event, cls = case({"actor": "j.doe"}, {})
    finding = orjson.loads(finding_json(event, cls, OPENED))
    assert finding["device"]["uid"] == "oven-01" and finding["device"]["ip"] == "127.0.0.1"
    assert finding["actor"] == {"user": {"name": "j.doe"}}
    observed = {(o["name"], o["value"]) for o in finding["observables"]}
    assert {("device.uid", "oven-01"), ("device.ip", "127.0.0.1"),
            ("actor.user.name", "j.doe")} <= observed
    (resource,) = finding["resources"]
    assert resource["uid"] == "oven-01/temperature_sp" and resource["type"] == "setpoint"
    assert finding["unmapped"]["attack_framework"] == "MITRE ATT&CK for ICS"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("breakage", [
    "no class_uid", "unknown attribute", "severity_id out of range", "technique without id",
    "finding without uid", "device without type_id",
])
def test_the_schema_check_is_strict(version: str, breakage: str) -> None:
    """The vendored schema refuses what OCSF refuses: the check above is not a formality."""
    event, cls = case({}, {})
    finding = orjson.loads(finding_json(event, cls, OPENED))
    if breakage == "no class_uid":
        del finding["class_uid"]
    elif breakage == "unknown attribute":
        finding["otwatch_record"] = "NC-1"
    elif breakage == "severity_id out of range":
        finding["severity_id"] = 7
    elif breakage == "technique without id":
        finding["finding_info"]["attacks"] = [{"technique": {"src_url": "x"}}]
    elif breakage == "finding without uid":
        del finding["finding_info"]["uid"]
    else:
        del finding["device"]["type_id"]
    assert problems(finding, version)


@settings(max_examples=60, deadline=None)
@given(
    actor=st.none() | st.text(max_size=40),
    tag=st.text(min_size=1, max_size=40),
    value=st.none() | st.booleans() | st.floats() | st.integers(-2**53, 2**53) | st.text(),
    created=st.booleans(),
)
def test_any_event_makes_a_valid_finding_that_reads_back(
    actor: str | None, tag: str, value: Any, created: bool
) -> None:
    event = make_event(actor=actor, tag={"name": tag}, new_value=value)
    cls = classify(event, CRITERIA)
    outcome = OPENED if created else ATTACHED
    body = finding_json(event, cls, outcome)
    assert problems(orjson.loads(body), "1.1.0") == []
    assert read_alert(body) == orjson.loads(alert_json(event, cls, outcome))


@pytest.mark.parametrize(("value", "reason"), [
    (None, "empty message"),
    (b"{oops", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"schema": "otwatch.alert/9"}', "neither otwatch.alert/1"),
    (b'{"class_uid": 2004, "finding_info": {}, "unmapped": {}}', "neither otwatch.alert/1"),
    (b'{"class_uid": 3002}', "not a Detection Finding"),
    (b'{"schema": "otwatch.alert/1", "alert_id": 5}', "alert_id"),
])
def test_what_is_no_alert_is_refused_with_the_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(UnreadableAlert, match=reason):
        read_alert(value)


def test_each_format_has_one_encoder() -> None:
    assert encoder_for("otwatch") is alert_json and encoder_for("ocsf") is finding_json
