"""A recipe download reaches a subscribing agent in more than one notification batch.

The members of a recipe are written one after another. With subscriptions, the id may come in
one publish and the version in the next; a housekeeping tick (or another batch) in between must
not report the half-written recipe (an approved change-over would then read as a value
mismatch). The watcher is driven directly with the source events a subscription produces.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.config import OpcuaControllerConfig
from agent.contract import SuspectChange, TagValue
from agent.sources.base import Reading, Readings
from agent.watcher import ControllerWatcher
from tests.agent.driven_watcher import demo_config, driven_watcher

pytestmark = pytest.mark.asyncio

#: 0.4 s to settle: two looks of 100 ms sampling + 100 ms publishing. Long next to the
#: microseconds between two calls here, even on a loaded machine; short enough to wait out.
FAST = {"publishing_interval_ms": 100.0, "sampling_interval_ms": 100.0}
PAST_SETTLE_S = 0.6


def now() -> datetime:
    return datetime.now(UTC)


async def oven_watcher(tmp_path: Path) -> tuple[ControllerWatcher, list[SuspectChange]]:
    config = demo_config(tmp_path)
    oven = config.controller("oven-01")
    assert isinstance(oven, OpcuaControllerConfig) and oven.mode == "subscribe"
    oven = oven.model_copy(update=FAST)
    assert oven.look_interval_s == pytest.approx(0.2)
    watcher, seen = await driven_watcher(config, oven, now())
    start = {t.name: Reading(0) for t in oven.tags}
    start.update(recipe_id=Reading("R-100"), recipe_version=Reading(2))
    await watcher.on_event(Readings(now(), start))  # the first complete read: the baseline
    seen.clear()  # session findings of the first connect are not what this test is about
    return watcher, seen


def partial(**values: TagValue) -> Readings:
    return Readings(now(), {k: Reading(v) for k, v in values.items()}, complete=False)


async def test_a_tick_between_two_batches_does_not_report_half_a_recipe(tmp_path: Path) -> None:
    watcher, seen = await oven_watcher(tmp_path)
    await watcher.on_event(partial(recipe_id="R-200"))
    await watcher.tick(now())  # the version's batch is still on its way
    await watcher.on_event(partial(lot_id="L-9"))  # a batch without the recipe's members
    assert [e for e in seen if e.tag.name == "active_recipe"] == []
    await watcher.on_event(partial(recipe_version=3))
    await asyncio.sleep(PAST_SETTLE_S)  # past the settle time: both members are in
    await watcher.tick(now())
    recipes = [e for e in seen if e.tag.name == "active_recipe"]
    assert len(recipes) == 1, recipes
    new = recipes[0].new_value
    assert isinstance(new, dict) and (new["id"], new["version"]) == ("R-200", 3)
    assert recipes[0].change_kind.value == "recipe_switch"


async def test_a_settled_recipe_is_reported_once(tmp_path: Path) -> None:
    watcher, seen = await oven_watcher(tmp_path)
    await watcher.on_event(partial(recipe_id="R-300", recipe_version=1))
    await asyncio.sleep(PAST_SETTLE_S)
    await watcher.tick(now())
    await watcher.tick(now())
    await watcher.on_event(partial(lot_id="L-10"))
    assert [(e.new_value["id"], e.new_value["version"])  # type: ignore[index]
            for e in seen if e.tag.name == "active_recipe"] == [("R-300", 1)]
