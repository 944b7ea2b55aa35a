"""Issue 14 item 4: NaN and the infinities are values. A setpoint that becomes NaN is a change,
and so is one that leaves NaN or flips infinity; NaN staying NaN is not. The event carries
them as ``{"$float": ...}`` and approvals never take NaN for a number."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.approvals import MatchPolicy, match_change
from agent.config_base import RecipeGroup
from agent.contract import ChangeKind, TagValue, Verdict
from agent.detect import differs, same_value
from agent.recipes import settle_recipes
from agent.sources.base import Reading
from simulators.runtime import SimulatedPlant
from tests.agent.test_agent_detects import config_for, running, spooled, wait_until
from tests.approvals.factory import at, record

pytestmark = pytest.mark.integration

NAN, INF = math.nan, math.inf
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("old", "new", "deadband", "changed"),
    [
        (180.0, NAN, 0.0, True),
        (NAN, 180.0, 0.0, True),
        (180.0, NAN, 1e9, True),  # no deadband hides a NaN
        (NAN, NAN, 0.0, False),
        (INF, -INF, 0.0, True),
        (-INF, INF, 1e300, True),
        (INF, INF, 0.0, False),
        (180.0, INF, 0.0, True),
        (INF, 180.0, 1e308, True),
        (1, NAN, 0.0, True),
        (NAN, 0, 0.0, True),
        (2**70, 2**70 + 1, 0.0, True),
        (10**400, 10**400, 0.0, False),
        (10**400, 1.0, 0.0, True),
        (180.0, 180.4, 0.5, False),
        ({"p": NAN}, {"p": NAN}, 0.0, False),
        ({"p": 1.0}, {"p": NAN}, 0.0, True),
        ("NaN", NAN, 0.0, True),
        (None, NAN, 0.0, True),
    ],
)
def test_differs(old: TagValue, new: TagValue, deadband: float, changed: bool) -> None:
    assert differs(old, new, deadband) is changed
    assert differs(new, old, deadband) is changed


FLOATS = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=200, deadline=None)
@given(FLOATS, FLOATS, st.floats(0.0, 1e6))
def test_differs_on_any_floats(a: float, b: float, deadband: float) -> None:
    assert differs(a, b, deadband) == differs(b, a, deadband)
    assert not differs(a, a, deadband)
    if math.isnan(a) != math.isnan(b):
        assert differs(a, b, deadband)
    if math.isinf(a) and a != b:
        assert differs(a, b, deadband)


def test_same_value_sees_nan_as_itself_at_any_depth() -> None:
    assert same_value({"items": [NAN, 1]}, {"items": [float("nan"), 1]})
    assert not same_value({"items": [NAN]}, {"items": [1.0]})


def test_a_recipe_parameter_that_becomes_nan_settles_and_is_reported() -> None:
    group = RecipeGroup(name="r", id_tag="rid", parameter_tags=["temp"])
    baseline = {"rid": Reading("R-1"), "temp": Reading(200.0)}
    # each scan makes a new NaN object: the value must still be seen as the same
    first = {"rid": Reading("R-1"), "temp": Reading(float("nan"))}
    second = {"rid": Reading("R-1"), "temp": Reading(float("nan"))}
    changes, pending = settle_recipes([group], baseline, first, {}, at=NOW)
    assert changes == [] and "r" in pending
    changes, pending = settle_recipes([group], baseline, second, pending, at=NOW)
    assert [c.change_kind for c in changes] == [ChangeKind.RECIPE_EDIT] and pending == {}
    assert math.isnan(changes[0].new_value["parameters"]["temp"])  # type: ignore[index]


@pytest.mark.parametrize(
    "expected",
    [{"exact": 185.0}, {"min": 180.0, "max": 190.0}, {"min": 180.0}, {"max": 190.0},
     {"min": -INF, "max": INF}, {"exact": NAN}],
)
def test_approvals_never_take_nan_for_a_number(expected: dict[str, Any]) -> None:
    assert _verdict(expected, NAN) is Verdict.VALUE_MISMATCH


@pytest.mark.parametrize("value", [INF, -INF])
def test_a_bounded_approval_never_covers_an_infinity(value: float) -> None:
    for expected in ({"exact": 185.0}, {"min": 180.0, "max": 190.0}):
        assert _verdict(expected, value) is Verdict.VALUE_MISMATCH


def _verdict(expected: dict[str, Any], value: float) -> Verdict:
    return match_change(
        controller="press-01", tag="temperature_sp", change_kind=ChangeKind.SETPOINT_CHANGE,
        new_value=value, occurred_at=at(12), approvals=[record(expected=expected)], used=(),
        policy=MatchPolicy(clock_skew_s=0),
    ).verdict


pytestmark_module = pytest.mark.asyncio(loop_scope="module")


@pytestmark_module
async def test_a_setpoint_that_becomes_nan_is_reported_with_its_nan(
    plant: SimulatedPlant, tmp_path: Path
) -> None:
    async with running(config_for(plant, tmp_path)) as agent:
        await plant.write("press-01", "temperature_sp", NAN, actor="unknown")
        await wait_until(lambda: agent.spool.depth() >= 1, "the change to NaN")
        await plant.write("press-01", "temperature_sp", -INF, actor="unknown")
        await wait_until(lambda: agent.spool.depth() >= 2, "the change to -inf")
        await plant.write("press-01", "temperature_sp", 180.0, actor="unknown")
        await wait_until(lambda: agent.spool.depth() >= 3, "the change back")
        raw = [orjson.loads(v) for *_, v in agent.spool.peek(10)]
    events = spooled(tmp_path)
    # the sample approvals hold 185.0 for this tag: NaN is no match for it
    assert [(e.tag.name, e.change_kind.value, e.verdict.value) for e in events] == [
        ("temperature_sp", "setpoint_change", "value_mismatch")
    ] * 3
    assert [(b["old_value"], b["new_value"]) for b in raw] == [
        (180.0, {"$float": "NaN"}),
        ({"$float": "NaN"}, {"$float": "-Infinity"}),
        ({"$float": "-Infinity"}, 180.0),
    ]
    assert math.isnan(events[0].new_value) and events[1].new_value == -INF  # type: ignore[arg-type]
