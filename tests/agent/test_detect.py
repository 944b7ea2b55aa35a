"""Change detection against the baseline: pure, no sockets, no clock."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.config import ModbusTag
from agent.contract import ChangeKind
from agent.detect import detect_changes, differs, next_baseline
from agent.sources.base import Reading

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def tag(name: str, kind: str | None = "setpoint", deadband: float = 0.0) -> ModbusTag:
    spec: dict[str, object] = {"name": name, "address": 0, "deadband": deadband}
    spec.update({"kind": kind} if kind else {"context": "lot"})
    return ModbusTag.model_validate(spec)


def test_differs_respects_deadband_and_types() -> None:
    assert differs(180.0, 185.0, 0.5)
    assert not differs(180.0, 180.3, 0.5)
    assert differs(1, 2, 0.0)
    assert differs("R-100", "R-101", 10.0)
    assert not differs(float("nan"), float("nan"), 0.0)
    assert differs(True, False, 0.0)


def test_differs_on_float_edges() -> None:
    inf, nan, big = float("inf"), float("nan"), 1.7e308
    assert differs(180.0, inf, 0.5) and differs(inf, 180.0, 0.5)
    assert differs(inf, -inf, 0.5) and not differs(inf, inf, 0.5)
    assert differs(1.0, nan, 0.5) and differs(nan, 1.0, 0.5) and differs(inf, nan, 0.0)
    assert differs(-big, big, 1e308)  # the difference overflows to inf: still a change
    assert not differs(-big, -big, 0.0) and not differs(0.0, -0.0, 0.0)
    assert differs(1.0, 1.5, 0.4) and not differs(1.0, 1.5, 0.5)  # the deadband is inclusive
    assert differs(1.0, 2, 0.5) and not differs(1, 1.0, 0.0)  # float against int as before


def test_change_reported_with_kind_and_values() -> None:
    tags = [tag("sp"), tag("mode", "mode"), tag("lot", None)]
    baseline = {"sp": Reading(180.0), "mode": Reading("AUTO"), "lot": Reading("L1")}
    readings = {"sp": Reading(185.0), "mode": Reading("MANUAL"), "lot": Reading("L2")}
    changes = detect_changes(tags, baseline, readings, at=NOW)
    assert [(c.tag.name, c.old_value, c.new_value, c.change_kind) for c in changes] == [
        ("sp", 180.0, 185.0, ChangeKind.SETPOINT_CHANGE),
        ("mode", "AUTO", "MANUAL", ChangeKind.MODE_CHANGE),
    ]


def test_first_scan_after_reconnect_is_changed_while_unwatched() -> None:
    changes = detect_changes(
        [tag("sp")], {"sp": Reading(1)}, {"sp": Reading(2)}, at=NOW, unwatched=True
    )
    assert [c.change_kind for c in changes] == [ChangeKind.CHANGED_WHILE_UNWATCHED]


def test_unknown_tag_is_learnt_not_reported() -> None:
    readings = {"sp": Reading(5)}
    assert detect_changes([tag("sp")], {}, readings, at=NOW) == []
    assert next_baseline({}, readings, []) == readings


def test_source_timestamp_is_the_occurrence_time() -> None:
    ts = datetime(2026, 11, 23, 8, 59, tzinfo=UTC)
    (change,) = detect_changes([tag("sp")], {"sp": Reading(1)}, {"sp": Reading(2, ts)}, at=NOW)
    assert change.occurred_at == ts


def test_noise_within_deadband_does_not_move_the_baseline() -> None:
    """Slow drift adds up: 0.3 + 0.3 is reported once it exceeds a 0.5 deadband."""
    tags = [tag("sp", deadband=0.5)]
    base = {"sp": Reading(100.0)}
    first = {"sp": Reading(100.3)}
    assert detect_changes(tags, base, first, at=NOW) == []
    base = next_baseline(base, first, [])
    assert base["sp"].value == 100.0
    second = {"sp": Reading(100.6)}
    (change,) = detect_changes(tags, base, second, at=NOW)
    assert (change.old_value, change.new_value) == (100.0, 100.6)


def test_changed_and_changed_back_are_two_changes() -> None:
    tags = [tag("sp")]
    base = {"sp": Reading(180.0)}
    seen = []
    for value in (190.0, 180.0):
        readings = {"sp": Reading(value)}
        changes = detect_changes(tags, base, readings, at=NOW)
        seen.extend((c.old_value, c.new_value) for c in changes)
        base = next_baseline(base, readings, changes)
    assert seen == [(180.0, 190.0), (190.0, 180.0)]


def test_a_measurement_is_context_never_a_change() -> None:
    tags = [tag("flow", "measurement"), tag("sp")]
    baseline = {"flow": Reading(1.0), "sp": Reading(1.0)}
    readings = {"flow": Reading(9.0), "sp": Reading(2.0)}
    changes = detect_changes(tags, baseline, readings, at=NOW)
    assert [c.tag.name for c in changes] == ["sp"]
