"""The records batch formats each event's times once (`detectors.records.ingest._Batch`): its
shortcut for a time equal to the one before must answer exactly what formatting it afresh
answers, for any sequence of naive and aware times in any offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from detectors.records.ingest_rows import Batch as _Batch
from detectors.records.trail import TrailWriter, iso, utc


class _Parsed(BaseModel):
    """A time as an event's model parses it (pydantic's own ``TzInfo``)."""

    at: datetime


_BASE = datetime(2026, 12, 1, 4, 40, 19, 123456)
_OFFSETS = st.sampled_from([None, 0, 0, 60, -330, 14 * 60])


@st.composite
def _moments(draw: st.DrawFn) -> datetime:
    naive = _BASE + timedelta(microseconds=draw(st.integers(0, 3)) * 500_000)
    offset = draw(_OFFSETS)
    if offset is None:
        return naive
    aware = naive.replace(tzinfo=timezone(timedelta(minutes=offset)))
    how = draw(st.sampled_from(["timezone", "utc", "parsed"]))
    if how == "utc":
        return aware.astimezone(UTC)
    if how == "parsed":
        return _Parsed(at=aware.isoformat()).at
    return aware


def _batch() -> _Batch:
    return _Batch(now="", year=2026, trail=TrailWriter.starting_at(None), open_by_key={})


@given(st.lists(_moments(), max_size=30))
@settings(max_examples=300)
def test_times_formatted_once_are_the_times_formatted_afresh(moments: list[datetime]) -> None:
    batch = _batch()
    for moment in moments:
        assert batch.iso(moment) == iso(moment)
        at, text = batch.instant(moment)
        assert at == utc(moment) and at.tzinfo is UTC and text == iso(moment)


def test_a_naive_time_is_not_the_aware_time_before_it() -> None:
    batch = _batch()
    aware = _BASE.replace(tzinfo=timezone(timedelta(hours=2)))
    assert batch.iso(aware) == "2026-12-01T02:40:19.123456+00:00"
    assert batch.iso(_BASE) == "2026-12-01T04:40:19.123456+00:00"
    assert batch.instant(aware)[1] == "2026-12-01T02:40:19.123456+00:00"
    assert batch.instant(_BASE)[1] == "2026-12-01T04:40:19.123456+00:00"
