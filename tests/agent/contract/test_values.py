"""Event values (schema otwatch.change/2): NaN, infinities and truncations survive the trip
through pydantic and orjson; wrong shapes are refused with a reason."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from agent.contract import SCHEMA, SCHEMA_V1, SuspectChange, TagKind, decode_value, encode_value
from agent.contract.values import canonical_json, truncated
from tests.support.events import make_event


def _same(a: Any, b: Any) -> bool:
    """Equal, where NaN equals NaN (at any depth)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize(
    ("value", "json"),
    [
        (math.nan, b'{"$float":"NaN"}'),
        (math.inf, b'{"$float":"Infinity"}'),
        (-math.inf, b'{"$float":"-Infinity"}'),
        (1.5, b"1.5"),
        (-0.0, b"-0.0"),
        (7, b"7"),
        (True, b"true"),
        (None, b"null"),
        ("NaN", b'"NaN"'),  # a string that reads NaN stays a string
        ({"id": "R7", "speed": math.nan}, b'{"id":"R7","speed":{"$float":"NaN"}}'),
        ({"items": [1.0, -math.inf]}, b'{"items":[1.0,{"$float":"-Infinity"}]}'),
    ],
)
def test_values_are_written_and_read_back(value: Any, json: bytes) -> None:
    event = make_event(old_value=value, new_value=value, context={"lot": value})
    raw = event.to_json()
    assert b'"old_value":' + json in raw
    back = SuspectChange.model_validate_json(raw)
    assert _same(back.old_value, value) and _same(back.context["lot"], value)
    # orjson then pydantic: the classifier's careful path reads the same
    again = SuspectChange.model_validate(orjson.loads(raw))
    assert _same(again.new_value, value)
    assert again.to_json() == raw


def test_an_infinity_change_is_not_none_to_none() -> None:
    """Issue 14 item 4: +inf -> -inf used to be published as null -> null."""
    raw = make_event(old_value=math.inf, new_value=-math.inf).to_json()
    body = orjson.loads(raw)
    assert body["old_value"] == {"$float": "Infinity"}
    assert body["new_value"] == {"$float": "-Infinity"}


def test_truncated_values_round_trip() -> None:
    marker = {"$truncated": {"sha256": "a" * 64, "length": 2_000_000, "head": "abc"}}
    event = make_event(new_value=marker)
    back = SuspectChange.model_validate_json(event.to_json())
    assert back.new_value == marker
    info = truncated(back.new_value)
    assert info is not None and info.length == 2_000_000
    assert truncated(back.old_value) is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ([1, 2], "an array"),
        ({"$float": "nan"}, '"NaN", "Infinity" or "-Infinity"'),
        ({"$float": 1.0}, '"NaN", "Infinity" or "-Infinity"'),
        ({"$truncated": {"sha256": "xyz", "length": 1, "head": ""}}, "sha256"),
        ({"$truncated": {"sha256": "a" * 64, "length": -1, "head": ""}}, "length"),
        ({"$truncated": "yes"}, "$truncated"),
        ({"a": {"b": object()}}, "not an object"),
    ],
)
def test_wrong_values_are_refused_with_a_reason(value: Any, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_event(new_value=value)
    assert words in str(info.value)
    assert "new_value" in str(info.value)


def test_deep_nesting_is_refused_not_a_crash() -> None:
    value: Any = 1
    for _ in range(200):
        value = {"k": value}
    with pytest.raises(ValidationError, match="nested deeper"):
        make_event(new_value=value)


def test_integers_beyond_64_bits_become_floats() -> None:
    assert decode_value(2**70) == float(2**70)
    assert decode_value(10**400) == math.inf
    assert decode_value(-(10**400)) == -math.inf
    assert isinstance(decode_value(2**64 - 1), int)


def test_encode_leaves_plain_values_alone() -> None:
    value = {"id": "R1", "p": [1, 2.5, "x", None, True]}
    assert encode_value(value) == value


def test_canonical_json_writes_a_lone_surrogate_as_a_replacement() -> None:
    assert canonical_json({"b": "x\ud800", "a": 1}) == '{"a":1,"b":"x\ufffd"}'.encode()


def test_schema_v1_is_still_read_and_v2_fields_are_refused_in_it() -> None:
    v1 = orjson.loads(make_event().to_json())
    v1["schema"] = SCHEMA_V1
    for name in ("snapshot", "signature", "omitted"):
        del v1[name]
    assert SuspectChange.model_validate(v1).schema_ == SCHEMA_V1
    v1["omitted"] = ["context"]
    with pytest.raises(ValidationError, match=r"omitted is new in otwatch\.change/2"):
        SuspectChange.model_validate(v1)
    assert make_event().schema_ == SCHEMA


def test_measurement_is_a_tag_kind() -> None:
    assert make_event(tag={"kind": "measurement"}).tag.kind is TagKind.MEASUREMENT


def test_a_malformed_truncation_marker_is_refused_in_one_line() -> None:
    """Found by the message fuzzer: the reason goes into a dead letter and a log line, so it
    is one printable line naming each missing member."""
    with pytest.raises(ValueError) as refused:
        decode_value({"$truncated": {}})
    reason = str(refused.value)
    assert reason.isprintable(), reason
    assert all(f"{name}: Field required" in reason for name in ("sha256", "length", "head"))
