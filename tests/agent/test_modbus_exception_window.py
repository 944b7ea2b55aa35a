"""Issue 14 item 3: a Modbus exception blinds the agent to nothing but the tags it concerns,
and only while it lasts.

The simulated PLC answers "illegal data address" for 2 s; 6 s after the window a change of a
critical setpoint that no approval covers is made. The agent used to stop reading the refused
requests until it was restarted (the change was never reported, and no gap either). Now the
tags are read again as soon as the device answers, each reports its monitoring gap (last good
read to first good read after), and the change is reported.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from simulators.modbus_plc import ModbusPLC
from simulators.runtime import SimulatedPlant
from tests.agent.test_agent_detects import config_for, running, spooled, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def test_an_exception_window_is_a_gap_and_the_change_after_it_is_reported(
    plant: SimulatedPlant, tmp_path: Path
) -> None:
    config = config_for(plant, tmp_path)
    plc = plant.plc("press-01")
    assert isinstance(plc, ModbusPLC)
    async with running(config) as agent:
        opened = datetime.now(UTC)
        plc.exception_window("illegal_address", 2.0)
        beats = []
        for _ in range(15):  # what the heartbeat says during the window
            await asyncio.sleep(0.1)
            beats.append(agent._heartbeat())
        await asyncio.sleep(2.0 - 1.5 + 6.0)
        closed = datetime.now(UTC)
        await plant.write("press-01", "pressure_sp", 15.5, actor="unknown")  # approved: 13-14
        await wait_until(
            lambda: any(e.tag.name == "pressure_sp" for e in spooled(tmp_path)
                        if e.change_kind.value == "setpoint_change"),
            "the change after the window",
        )
        after = agent._heartbeat()
    events = spooled(tmp_path)
    (change,) = [e for e in events if e.change_kind.value == "setpoint_change"]
    assert (change.tag.name, change.old_value, change.new_value) == ("pressure_sp", 12.5, 15.5)
    # outside the approved 13-14 bar: not authorized (value_mismatch), and critical
    assert change.verdict.value == "value_mismatch" and change.tag.critical_to_quality
    gaps = [e for e in events if e.change_kind.value == "monitoring_gap"]
    watched = {t.name for t in config.controller("press-01").tags if t.is_watched}
    assert {e.tag.name for e in gaps} == watched
    # A reply already on its way when the window opened is the last good read, stamped when the
    # agent took it in: up to one scan after `opened` on a busy machine.
    in_flight = timedelta(seconds=config.controller("press-01").poll_interval_s)
    for gap in gaps:
        assert gap.gap is not None and gap.controller.id == "press-01"
        # causal order: last good read, window opened, first good read, tags seen back
        assert gap.gap.start <= opened + in_flight and opened < gap.gap.end <= closed
        assert gap.gap.start < gap.gap.end
        assert gap.tag.address != "" and "Modbus exception 2 (illegal data address)" in \
            gap.verdict_reason
    # the heartbeat said so while it lasted (every tag, lot_counter and the measurement too),
    # and not after
    read = len(config.controller("press-01").tags)
    assert any(b.health == "degraded" and b.tags_unreadable == read for b in beats)
    assert after.health == "ok" and after.tags_unreadable == 0
