"""The text of the baseline snapshot and of its journal (`agent.baseline.encode_tags`, one
per append in the journal): whatever the readings, what the agent reads back
after a crash is what the standard library's text gave back, so the orjson fast paths for
plain readings change nothing a restart sees."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.baseline import BaselineStore, _reading_to_json, encode_tags
from agent.sources.base import Reading

values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1),
    st.dictionaries(st.text(max_size=5), st.floats(allow_nan=True) | st.text(max_size=5)),
)
stamps = st.none() | st.datetimes(min_value=datetime(1970, 1, 1)) | st.builds(
    lambda d, m: d.replace(tzinfo=timezone(timedelta(minutes=m))),
    st.datetimes(min_value=datetime(1970, 1, 1)), st.integers(-600, 600),
) | st.builds(
    lambda d, s: d.replace(tzinfo=timezone(timedelta(seconds=s))),
    st.datetimes(min_value=datetime(1970, 1, 1)), st.integers(-3599, 3599),
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


plain_values = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
#: Mostly what orjson writes, now and then what it must not (NaN, infinity, over 64 bits).
near_plain = st.builds(
    Reading, plain_values | st.floats() | st.integers(),
    st.none() | st.datetimes(min_value=datetime(1970, 1, 1), timezones=st.just(UTC)),
)
AT_UTC = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
ODD = [Reading(float("nan"), AT_UTC), Reading(float("inf")), Reading(-float("inf"), AT_UTC),
       Reading(2**70), Reading("x\ud800", AT_UTC), Reading([1.0, 2.0], AT_UTC),
       Reading({"a": float("nan")}),
       Reading(1.0, AT_UTC.astimezone(timezone(timedelta(seconds=37)))),
       Reading(1.0, AT_UTC.astimezone(timezone(timedelta(hours=5, minutes=30)))),
       Reading(1.0, AT_UTC.replace(tzinfo=None)), Reading(1e308), Reading(-1e308)]


def _reads_back_the_same(tags: dict[str, Reading]) -> None:
    before = json.loads(json.dumps({k: _reading_to_json(v) for k, v in tags.items()},
                                   default=str))
    after = json.loads(encode_tags(tags))
    assert list(after) == list(before)
    assert all(_same(after[k], before[k]) for k in before), (after, before)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), near_plain, max_size=8))
def test_the_snapshot_text_reads_back_as_the_standard_librarys(tags: dict[str, Reading]) -> None:
    _reads_back_the_same(tags)


@pytest.mark.parametrize("odd", ODD, ids=repr)
def test_one_reading_orjson_cannot_write_alike_takes_the_slow_path(odd: Reading) -> None:
    _reads_back_the_same({"plain": Reading(1.5, AT_UTC), "odd": odd, "big": Reading(1e308)})


def test_a_replayed_journal_gives_the_readings_back(tmp_path: Any) -> None:
    at = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
    readings = {"a": Reading(1.5, at), "b": Reading(float("nan"), at), "c": Reading(2**70, None),
                "d": Reading("x\ud800", at), "e": Reading(True, at), "f": Reading(None, None)}
    store = BaselineStore(tmp_path / "baseline.json")
    half = list(readings)[:3]
    store.replay([("opc", encode_tags({t: readings[t] for t in half})),
                  ("opc", encode_tags({t: r for t, r in readings.items() if t not in half}))])
    back = store.get("opc").tags
    assert back.keys() == readings.keys()
    for tag, reading in readings.items():
        assert _same(back[tag].value, reading.value)
        assert back[tag].source_ts == reading.source_ts
