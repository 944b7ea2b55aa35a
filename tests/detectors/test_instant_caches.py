"""Caches per instant answer as the uncached call: the criteria's off-hours lookup (as the
calendar) and the alert's time text (as ``isoformat``)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from detectors.alert_formats.native import _time_text
from detectors.criteria import SiteCalendar, _off_hours

CALENDAR = SiteCalendar(timezone="Europe/Berlin", working_days=["mon", "tue", "wed"],
                        working_hours_start=time(6, 0), working_hours_end=time(22, 30))
ZONES = st.sampled_from([UTC, ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin"),
                         timezone(timedelta(hours=5, minutes=30))])


@given(st.lists(st.tuples(st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1)), ZONES,
                          st.sampled_from([0, 1])), max_size=40))
def test_cached_answers_equal_the_calendars(moments: list[tuple[datetime, object, int]]) -> None:
    """Each instant in several zones, and both folds of a wall time (equal datetimes of one
    zone that are an hour apart at a clock change), asked of one cache."""
    off_hours = _off_hours(CALENDAR)
    for naive, zone, fold in moments:
        at = naive.replace(tzinfo=zone, fold=fold)  # type: ignore[arg-type]
        for same in (at, at.replace(fold=1 - fold), at.astimezone(UTC)):
            assert off_hours(same, same.tzinfo, same.fold) == CALENDAR.is_off_hours(same)


def test_the_ambiguous_hour_is_told_apart() -> None:
    """02:30 on the night Berlin leaves summer time, before and after: equal datetimes."""
    zone = ZoneInfo("Europe/Berlin")
    calendar = SiteCalendar(timezone="UTC", working_days=["sun"],
                            working_hours_start=time(0, 0), working_hours_end=time(1, 0))
    first = datetime(2025, 10, 26, 2, 30, tzinfo=zone)  # 00:30 UTC Sunday: working hours
    second = first.replace(fold=1)  # 01:30 UTC Sunday: off hours
    assert first == second
    assert calendar.is_off_hours(second) != calendar.is_off_hours(first)
    off_hours = _off_hours(calendar)
    for at in (first, second, first, datetime(2025, 10, 26, 0, 5, tzinfo=UTC)):
        assert off_hours(at, at.tzinfo, at.fold) == calendar.is_off_hours(at)


@given(st.lists(st.tuples(st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1)), ZONES,
                          st.sampled_from([0, 1])), max_size=40))
def test_cached_time_text_is_isoformat(moments: list[tuple[datetime, object, int]]) -> None:
    """The same instant in other zones, and both folds of a wall time, each its own text."""
    for naive, zone, fold in moments:
        at = naive.replace(tzinfo=zone, fold=fold)  # type: ignore[arg-type]
        for same in (at, at.replace(fold=1 - fold), at.astimezone(UTC), naive):
            assert _time_text(same, same.tzinfo, same.fold) == same.isoformat()
