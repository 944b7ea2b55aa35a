"""CEF lines and their RFC 5424 messages, read back with readers written from the
specifications (tests/siem/parse.py): every field round-trips, hostile texts included, and a
message stays within the collector's size whatever the alert held."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.alert_formats import alert_for, cef_for, cef_from_alert, read_alert
from detectors.alert_formats.sample import FORMATS, HEADER, sample
from detectors.alert_formats.syslog import SyslogHeader, frame, header_field, timestamp
from detectors.criteria import classify, load_criteria
from detectors.records import RecordOutcome
from detectors.siem import syslog_frame
from tests.siem.parse import parse_cef, parse_syslog
from tests.support.events import make_event

CRITERIA = load_criteria(Path(__file__).parents[2] / "config" / "criteria.yaml")
OUTCOME = RecordOutcome(event_id="e", record_id="NC-7", ticket_id="SEC-7", created=True,
                        duplicate=False)
CONTROL = ("".join(chr(c) for c in range(32) if chr(c) not in "\r\n")
           + "".join(chr(c) for c in range(0x7f, 0xa0)) + "\u2028\u2029")


def alert(**overrides: Any) -> dict[str, Any]:
    event = make_event(**overrides)
    return orjson.loads(orjson.dumps(alert_for(event, classify(event, CRITERIA), OUTCOME)))


def expected_text(text: str) -> str:
    """What a reader gets back: control characters other than line breaks become U+FFFD."""
    return "".join("\ufffd" if c in CONTROL else c for c in text)


def test_the_header_and_the_standard_keys() -> None:
    cef = parse_cef(cef_from_alert(alert(actor="j.doe")))
    assert (cef.version, cef.vendor, cef.product) == ("0", "otwatch", "otwatch")
    assert (cef.signature_id, cef.severity) == ("JQS-1", "8")
    assert cef.name == "Unapproved setpoint change on oven-01 temperature_sp"
    ext = cef.extension
    assert ext["rt"] == str(int(datetime(2026, 11, 23, 10, tzinfo=UTC).timestamp() * 1000))
    assert (ext["dhost"], ext["suser"], ext["cat"]) == ("oven-01", "j.doe", "joint")
    assert (ext["cs1Label"], ext["cs1"]) == ("rules", "JQS-1")
    assert (ext["cs2Label"], ext["cs2"]) == ("attackIcsTechniques", "T0836")
    assert (ext["cs3"], ext["cs4"]) == ("NC-7", "SEC-7")
    assert (ext["otwatchOldValue"], ext["otwatchNewValue"]) == ("200.0", "230.0")


@pytest.mark.parametrize(("severity", "cef_severity", "syslog_severity"), [
    ("low", "3", 5), ("medium", "5", 4), ("high", "8", 3), ("critical", "10", 2),
])
def test_severities(severity: str, cef_severity: str, syslog_severity: int) -> None:
    body = {**alert(), "severity": severity}
    assert parse_cef(cef_from_alert(body)).severity == cef_severity
    message = parse_syslog(syslog_frame(body, HEADER, 8192).split(b" ", 1)[1].decode())
    assert int(message["pri"]) == 4 * 8 + syslog_severity  # facility auth


HOSTILE = [
    "plain",
    "pipe|in|it",
    "back\\slash\\",
    "equals=sign key=value",
    "line\nbreak\r\nand return",
    " cs1=forged extension",
    "\\|\\=\\\\n",
    "unicode \u00e9\u4e2d\U0001f525 \u202e rtl",
    "tab\tbell\x07esc\x1bdel\x7f nel\x85 ls\u2028",
    "trailing space ",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_texts_round_trip_in_every_field(text: str) -> None:
    body = alert(controller={"id": text}, tag={"name": text}, actor=text, site=text,
                 new_value=text)
    body["description"] = text
    body["rules_fired"] = [text, "JQS-2"]
    cef = parse_cef(cef_from_alert(body))
    want = expected_text(text)
    ext = cef.extension
    assert ext["dhost"] == ext["suser"] == ext["cs5"] == ext["otwatchSite"] == want
    assert ext["msg"] == want and ext["cs1"] == f"{want},JQS-2"
    assert ext["otwatchNewValue"] == expected_text(orjson.dumps(text).decode())
    # the header cannot carry a line break: it reads as a space there
    assert cef.signature_id == want.replace("\r", " ").replace("\n", " ")
    assert "\n" not in cef_from_alert(body) and "\r" not in cef_from_alert(body)


def test_nan_reads_as_nan_not_null() -> None:
    ext = parse_cef(cef_from_alert(alert(old_value=float("nan"), new_value=float("inf")))
                    ).extension
    assert ext["otwatchOldValue"] == '{"$float":"NaN"}'
    assert ext["otwatchNewValue"] == '{"$float":"Infinity"}'


def test_the_cef_encoder_is_a_function_of_event_classification_and_outcome() -> None:
    event = make_event()
    assert cef_for(event, classify(event, CRITERIA), OUTCOME) == cef_from_alert(
        alert_for(event, classify(event, CRITERIA), OUTCOME)).encode()


def test_technique_ids_of_every_rule_fired_are_kept() -> None:
    body = {**alert(), "attack_techniques": ["T0836", "T0831", "T0843"]}
    assert parse_cef(cef_from_alert(body)).extension["cs2"] == "T0836,T0831,T0843"


texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=3000)


@settings(max_examples=80, deadline=None)
@given(name=texts, value=texts, description=texts)
def test_any_alert_fits_the_collector_and_stays_one_parseable_line(
    name: str, value: str, description: str
) -> None:
    body = {**alert(), "controller": name, "tag": name, "actor": name, "site": name,
            "line": name, "agent_id": name, "alert_id": name, "old_value": value,
            "new_value": value, "description": description, "rules_fired": [name] * 5,
            "correlation_key": name, "master_record": name, "security_ticket": name}
    framed = syslog_frame(body, HEADER, 4096)
    length, _, message = framed.partition(b" ")
    assert int(length) == len(message) <= 4096
    parsed = parse_syslog(message.decode())
    cef = parse_cef(parsed["msg"])
    assert cef.extension["cs6"] == "setpoint_change"
    assert b"\n" not in message and b"\r" not in message


@pytest.mark.parametrize(("moment", "text"), [
    (datetime(2026, 11, 23, 2, 14, 5, 120000, tzinfo=UTC), "2026-11-23T02:14:05.120000Z"),
    (datetime(2026, 11, 23, 3, 14, 5, tzinfo=timezone(timedelta(hours=1))),
     "2026-11-23T02:14:05.000000Z"),
    (datetime(2026, 11, 23, 2, 14, 5), "-"),  # no zone: unknown
    (None, "-"),
    (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), "-"),  # out of range in UTC
    (datetime(999, 1, 2, tzinfo=UTC), "0999-01-02T00:00:00.000000Z"),
])
def test_timestamps(moment: datetime | None, text: str) -> None:
    assert timestamp(moment) == text


@pytest.mark.parametrize(("text", "limit", "field"), [
    ("relay-1", 255, "relay-1"), ("", 48, "-"), (None, 48, "-"), ("two words", 48, "twowords"),
    ("h\u00f6st", 48, "hst"), ("x" * 300, 255, "x" * 255), ("\t\n", 32, "-"),
])
def test_header_fields_are_printable_ascii(text: str | None, limit: int, field: str) -> None:
    assert header_field(text, limit) == field


def test_octet_counting_counts_bytes_not_characters() -> None:
    message = SyslogHeader(hostname="h", procid="1").message("CEF:0|\u00e9", severity="high",
                                                             time=None)
    assert frame(message) == b"%d %s" % (len(message), message)
    assert parse_syslog(message.decode())["msg"] == "CEF:0|\u00e9"


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_samples_are_shown_in_the_readme(fmt: str) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert sample(fmt) in readme, f"README: paste `otwatch-siem sample --format {fmt}`"


def test_the_samples_read_back() -> None:
    assert read_alert(sample("ocsf").encode()) == read_alert(sample("otwatch").encode())
    message = parse_syslog(sample("syslog").split(" ", 1)[1])
    assert message["msg"] == sample("cef")
