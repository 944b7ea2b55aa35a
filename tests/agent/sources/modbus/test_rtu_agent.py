"""The whole agent, in process, with two devices on one serial line (RTU over a socat pty
pair): its config loaded from a file, one connection for the line, and the changes of both
devices in its durable spool. No broker runs: detected events stay in the spool, which is
where "detected" is defined. Skipped, saying why, without socat.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from agent.config import ModbusControllerConfig, load_agent_config
from agent.contract import SuspectChange
from agent.kafka.settings import TopicNames
from agent.runner import Agent
from agent.spool import Spool
from simulators.broker import free_port
from tests.agent.sources.modbus.rtu_line import DEVICE_1_TAGS, DEVICE_2_TAGS, simulated_line

pytestmark = pytest.mark.integration

WAIT_S = 45.0  # generous: a loaded CI machine is slow to start an agent


def agent_file(directory: Path, line: dict[str, Any]) -> Path:
    """An agent config with dryer-01 and dryer-02, devices 1 and 2 on ``line``."""
    devices = [
        {"id": f"dryer-0{n}", "protocol": "modbus", "device_id": n, "poll_interval_s": 0.1,
         "timeout_s": 0.5, "monitoring_gap_min_s": 0.5, "tags": tags, **line}
        for n, tags in ((1, DEVICE_1_TAGS), (2, DEVICE_2_TAGS))
    ]
    path = directory / "agent.yaml"
    path.write_text(yaml.safe_dump({
        "agent": {"id": "edge-rtu", "site": "plant-rtu", "state_dir": str(directory / "state")},
        "kafka": {"bootstrap_servers": f"127.0.0.1:{free_port()}", "create_topics": False},
        "metrics": {"port": 0},
        "controllers": devices,
    }))
    return path


async def wait_until(predicate: Any, what: str) -> None:
    try:
        async with asyncio.timeout(WAIT_S):
            while not predicate():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {WAIT_S} s: {what}") from None


def spooled(state: Path) -> list[SuspectChange]:
    spool = Spool(state / "spool.db", topics=TopicNames())
    try:
        return [SuspectChange.model_validate(orjson.loads(v)) for _, _, _, v in spool.peek(100)]
    finally:
        spool.close()


async def test_two_devices_on_one_serial_line_are_watched_by_the_agent(tmp_path: Path) -> None:
    async with simulated_line(tmp_path) as (plc, line):
        config = load_agent_config(agent_file(tmp_path, line))
        state = config.agent.state_dir
        agent = Agent(config)
        task = asyncio.create_task(agent.run())
        try:
            await wait_until(lambda: (state / "ready").exists(), "the agent to be ready")
            # Both devices are read through the agent's one line: the port opens only once
            # (pyserial locks it), and the line the agent holds for it is the open one.
            dryer = config.controllers[1]
            assert isinstance(dryer, ModbusControllerConfig)
            assert agent.modbus_lines.line_for(dryer).is_open
            await plc.write("speed_sp", 1150)
            await plc.write("temperature_sp", 71.5)
            await wait_until(lambda: agent.spool.depth() >= 2, "both changes in the spool")
        finally:
            agent.stop()
            await asyncio.wait_for(task, 15)
    events = sorted(spooled(state), key=lambda e: e.controller.id)
    assert [(e.controller.id, e.tag.name, e.old_value, e.new_value, e.verdict.value)
            for e in events] == [
        ("dryer-01", "temperature_sp", 65.5, 71.5, "unapproved"),
        ("dryer-02", "speed_sp", 900, 1150, "unapproved"),
    ]
    assert events[1].controller.endpoint == f"modbus+rtu:{line['serial']['port']}/2"
