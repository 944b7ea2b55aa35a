"""Size limits: a value over the limit is truncated with its hash and length; an event never
grows past its cap, whatever its parts do."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.contract import EventLimits, SuspectChange, fit_event, limit_value, take_snapshot
from agent.contract.limits import RESERVED_BYTES, limit_mapping, value_json
from tests.agent.contract.test_fuzz_contract import tag_values
from tests.support.events import make_event

SMALL = EventLimits(max_value_bytes=1024, max_event_bytes=16 * 1024, head_chars=10)


def test_a_value_over_the_limit_is_truncated_with_its_hash_and_length() -> None:
    big = "é" * 3000
    cut = limit_value(big, SMALL)
    assert isinstance(cut, dict)
    full = orjson.dumps(big)
    assert cut == {"$truncated": {
        "sha256": hashlib.sha256(full).hexdigest(), "length": len(full), "head": "é" * 10,
    }}


def test_values_within_the_limit_stay_whole() -> None:
    for value in (None, True, 2**63, math.nan, "x" * 100, {"id": "R1", "p": list(range(50))}):
        assert limit_value(value, SMALL) is value


def test_a_mapping_is_truncated_as_its_canonical_json() -> None:
    recipe = {"id": "R1", "p": ["x" * 50] * 40, "nan": math.nan}
    cut = limit_value(recipe, SMALL)
    assert isinstance(cut, dict)
    assert cut["$truncated"]["sha256"] == hashlib.sha256(value_json(recipe)).hexdigest()
    assert cut["$truncated"]["head"] == value_json(recipe).decode()[:10]


def test_an_oversized_opc_ua_string_makes_an_event_that_fits() -> None:
    """Issue 14 item 2: a 1.5 MB string used to make an event the broker refuses."""
    event = make_event(new_value="A" * 1_500_000, context={"lot": "L" * 100_000})
    fitted = fit_event(event, EventLimits())
    body = fitted.to_json()
    assert len(body) <= EventLimits().max_event_bytes - RESERVED_BYTES
    back = SuspectChange.model_validate_json(body)
    assert back.new_value["$truncated"]["length"] == 1_500_002  # type: ignore[index]
    assert back.context["lot"]["$truncated"]["head"].startswith("LLL")  # type: ignore[index]
    assert back.old_value == 200.0
    assert fitted.omitted is None


def test_the_snapshot_keeps_the_hash_of_every_value() -> None:
    values = {f"tag{i}": "v" * 2000 for i in range(5)}
    snap = take_snapshot(values, SMALL)
    assert snap.sha256 == hashlib.sha256(value_json(values)).hexdigest()
    assert all("$truncated" in v for v in snap.values.values())  # type: ignore[operator]


def test_an_event_over_the_cap_drops_the_snapshot_values_then_the_context() -> None:
    values = {f"tag{i}": i * 1.5 for i in range(2000)}
    event = make_event(snapshot=take_snapshot(values, SMALL), context={"lot": "x" * 900})
    fitted = fit_event(event, SMALL)
    assert len(fitted.to_json()) <= SMALL.max_event_bytes - RESERVED_BYTES
    assert fitted.omitted == ["snapshot.values"]
    assert fitted.snapshot is not None and fitted.snapshot.values == {}
    assert fitted.snapshot.sha256 == event.snapshot.sha256  # type: ignore[union-attr]
    assert fitted.context == {"lot": "x" * 900}

    tight = EventLimits(max_value_bytes=1024, max_event_bytes=3100, head_chars=10)
    fitted = fit_event(event.model_copy(update={"verdict_reason": "r" * 1500}), tight)
    assert fitted.omitted == ["snapshot.values", "context", "long texts"]
    assert len(fitted.to_json()) <= tight.max_event_bytes - RESERVED_BYTES


def test_a_reason_that_quotes_a_huge_value_is_cut() -> None:
    event = make_event(verdict_reason="approved exactly 'A', got '" + "B" * 100_000 + "'")
    fitted = fit_event(event, EventLimits())
    assert len(fitted.verdict_reason) == 4096 + 3 and fitted.verdict_reason.endswith("...")


def test_a_small_event_is_returned_as_it_is() -> None:
    event = make_event(context={"lot": "L-1"})
    assert fit_event(event, EventLimits()) is event


@pytest.mark.parametrize("chars", [100, 170, 171, 200, 1024])
def test_a_short_string_of_escapes_is_limited_by_its_json_not_its_length(chars: int) -> None:
    """Control characters take 6 bytes each in JSON: 200 of them are over 1,024 bytes."""
    value = "\x01" * chars
    fitted = fit_event(make_event(new_value=value, context={"lot": value}), SMALL)
    fits = len(value_json(value)) <= SMALL.max_value_bytes
    assert (fitted.new_value == value) is fits
    assert (fitted.context["lot"] == value) is fits
    assert len(value_json(fitted.new_value)) <= SMALL.max_value_bytes


SMALL_VALUES = EventLimits(max_value_bytes=64, head_chars=4)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=4), tag_values, max_size=6) | st.dictionaries(
    st.text(max_size=4), st.floats(allow_nan=True) | st.integers() | st.none() | st.booleans()))
def test_a_mapping_is_limited_value_by_value_numbers_or_not(values: dict[str, Any]) -> None:
    limited = limit_mapping(values, SMALL_VALUES)
    assert limited is not values
    assert list(limited) == list(values)
    for name, value in values.items():
        expected = limit_value(value, SMALL_VALUES)
        assert limited[name] is value if expected is value else limited[name] == expected
