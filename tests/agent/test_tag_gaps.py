"""The watcher and single unreadable tags (``Readings.bad``), driven with the source events a
Modbus source produces: the gap of each watched tag is reported once it is read again (last
good read to first good read after), a change found then is ``changed_while_unwatched``, a
short spell is no gap, and the rest of the controller is watched throughout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.config import ModbusControllerConfig
from agent.contract import SuspectChange
from agent.sources.base import Reading, Readings
from agent.watcher import ControllerWatcher
from tests.agent.driven_watcher import demo_config, driven_watcher

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
REFUSED = "Modbus exception 2 (illegal data address)"
pytestmark = pytest.mark.asyncio


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def press_watcher(tmp_path: Path) -> tuple[ControllerWatcher, list[SuspectChange]]:
    config = demo_config(tmp_path, approvals=False)
    press = config.controller("press-01")
    assert isinstance(press, ModbusControllerConfig) and press.monitoring_gap_min_s == 5.0
    watcher, seen = await driven_watcher(config, press, at(0))
    await watcher.on_event(Readings(at(0), values(speed_sp=1200, temperature_sp=180.0)))
    seen.clear()
    return watcher, seen


def values(**changed: object) -> dict[str, Reading]:
    base = {"speed_sp": 1200, "temperature_sp": 180.0, "pressure_sp": 12.5}
    base.update(changed)  # type: ignore[arg-type]
    return {name: Reading(v) for name, v in base.items()}  # type: ignore[arg-type]


async def test_a_tag_read_again_reports_its_gap_and_its_change_as_unwatched(
    tmp_path: Path,
) -> None:
    watcher, seen = await press_watcher(tmp_path)
    rest = {k: v for k, v in values(speed_sp=1500).items() if k != "temperature_sp"}
    await watcher.on_event(Readings(at(1), rest, bad={"temperature_sp": REFUSED}))
    assert [(e.tag.name, e.change_kind.value) for e in seen] == [
        ("speed_sp", "setpoint_change")  # the rest of the controller is watched meanwhile
    ]
    assert watcher.unreadable == {"temperature_sp": (at(0), REFUSED)}
    await watcher.on_event(Readings(at(9), values(speed_sp=1500, temperature_sp=190.0)))
    change, gap = seen[1:]  # as after a reconnect: the changes, then the gap
    assert (gap.tag.name, gap.change_kind.value, gap.verdict.value) == (
        "temperature_sp", "monitoring_gap", "unapproved")
    assert gap.gap is not None and (gap.gap.start, gap.gap.end) == (at(0), at(9))
    assert gap.tag.address == "holding:0" and REFUSED in gap.verdict_reason
    assert (change.tag.name, change.change_kind.value) == (
        "temperature_sp", "changed_while_unwatched")
    assert watcher.unreadable == {}


async def test_a_short_spell_is_no_gap_and_a_context_tag_has_none(tmp_path: Path) -> None:
    watcher, seen = await press_watcher(tmp_path)
    bad = {"temperature_sp": REFUSED, "lot_counter": REFUSED}
    rest = {k: v for k, v in values().items() if k != "temperature_sp"}
    await watcher.on_event(Readings(at(1), rest, bad=bad))
    await watcher.on_event(Readings(at(3), {**values(), "lot_counter": Reading(7)}))
    assert seen == [] and watcher.unreadable == {}
    await watcher.on_event(Readings(at(4), rest, bad=bad))
    await watcher.on_event(Readings(at(20), {**values(), "lot_counter": Reading(7)}))
    assert [e.tag.name for e in seen] == ["temperature_sp"]  # lot_counter is context
