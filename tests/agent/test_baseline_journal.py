"""The baseline journal's text (`agent.baseline.encode_reading`, one per event): whatever the
reading, what the agent replays after a crash is what the standard library's text gave back,
so the orjson fast path for plain scalars changes nothing a restart sees."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.baseline import BaselineStore, _reading_to_json, encode_reading
from agent.sources.base import Reading

values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1),
    st.dictionaries(st.text(max_size=5), st.floats(allow_nan=True) | st.text(max_size=5)),
)
stamps = st.none() | st.builds(
    lambda d, m: d.replace(tzinfo=timezone(timedelta(minutes=m))),
    st.datetimes(min_value=datetime(1970, 1, 1)), st.integers(-600, 600),
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


@settings(max_examples=300, deadline=None)
@given(values, stamps)
def test_the_journal_text_replays_as_the_standard_librarys(value: Any, ts: datetime) -> None:
    reading = Reading(value, ts)
    before = json.dumps(_reading_to_json(reading), default=str)
    assert _same(json.loads(encode_reading(reading)), json.loads(before))


def test_a_replayed_journal_gives_the_readings_back(tmp_path: Any) -> None:
    at = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
    readings = {"a": Reading(1.5, at), "b": Reading(float("nan"), at), "c": Reading(2**70, None),
                "d": Reading("x\ud800", at), "e": Reading(True, at), "f": Reading(None, None)}
    store = BaselineStore(tmp_path / "baseline.json")
    store.replay(("opc", tag, encode_reading(r)) for tag, r in readings.items())
    back = store.get("opc").tags
    assert back.keys() == readings.keys()
    for tag, reading in readings.items():
        assert _same(back[tag].value, reading.value)
        assert back[tag].source_ts == reading.source_ts
