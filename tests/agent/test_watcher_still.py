"""A scan in which nothing moved (the source hands back the very `Reading` objects the baseline
holds) is settled without a tag-by-tag compare; what it must not hide: a reading that is a new
object (a change, or a NaN read again), a tag the baseline has not learnt yet, and a change
in the next scan."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.config import ModbusControllerConfig
from agent.contract import SuspectChange
from agent.sources.base import Reading, Readings
from agent.watcher import ControllerWatcher, _stands_still
from tests.agent.driven_watcher import demo_config, driven_watcher

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def press_watcher(tmp_path: Path) -> tuple[ControllerWatcher, list[SuspectChange]]:
    config = demo_config(tmp_path, approvals=False)
    press = config.controller("press-01")
    assert isinstance(press, ModbusControllerConfig)
    return await driven_watcher(config, press, at(0))


def test_stands_still_only_for_the_very_same_objects() -> None:
    nan, zero = Reading(math.nan), Reading(0.0)
    baseline = {"a": nan, "b": zero}
    assert _stands_still({"a": nan, "b": zero}, baseline)
    assert _stands_still({"b": zero}, baseline)  # a partial batch of unmoved readings
    assert not _stands_still({"a": Reading(math.nan), "b": zero}, baseline)
    assert not _stands_still({"a": nan, "b": Reading(-0.0)}, baseline)  # equal, not the same
    assert not _stands_still({"a": nan, "c": zero}, baseline)  # not learnt yet


async def test_a_still_scan_finds_nothing_and_the_next_change_is_found(tmp_path: Path) -> None:
    watcher, seen = await press_watcher(tmp_path)
    readings = {"speed_sp": Reading(1200), "temperature_sp": Reading(180.0)}
    await watcher.on_event(Readings(at(1), dict(readings)))
    await watcher.on_event(Readings(at(2), dict(readings)))  # the same objects: still
    assert seen == [] and watcher.baseline.tags["speed_sp"] is readings["speed_sp"]
    assert watcher.baseline.last_seen == at(2)
    learnt = {**readings, "pressure_sp": Reading(12.5)}  # a tag the baseline has not yet
    await watcher.on_event(Readings(at(3), learnt))
    assert seen == [] and watcher.baseline.tags["pressure_sp"] is learnt["pressure_sp"]
    await watcher.on_event(Readings(at(4), {**learnt, "speed_sp": Reading(1500)}))
    assert [(e.tag.name, e.change_kind.value) for e in seen] == [
        ("speed_sp", "setpoint_change")
    ]
    assert watcher.baseline.tags["speed_sp"].value == 1500
