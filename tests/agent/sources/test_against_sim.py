"""The agent's Modbus and OPC UA sources against the real simulated PLCs on loopback.

Values, data types and word orders are read through the agent's own read plans from
config/agent.yaml, and every test checks that the simulators received no write at all.
"""

from __future__ import annotations

import asyncio

import pytest

from agent.config import AgentConfig
from agent.sources.base import Connected, Readings, SourceEvent
from agent.sources.modbus import ModbusControllerConfig, ModbusSource
from agent.sources.opcua import OpcuaControllerConfig, OpcuaSource
from simulators.runtime import SimulatedPlant
from tests.agent.sources.factories import sample_on_plant

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


def agent_config(plant: SimulatedPlant) -> AgentConfig:
    return sample_on_plant(plant, poll_interval_s=0.1)


async def first_scans(source: ModbusSource | OpcuaSource, count: int) -> list[SourceEvent]:
    seen: list[SourceEvent] = []
    done = asyncio.Event()

    async def emit(event: SourceEvent) -> None:
        seen.append(event)
        if sum(isinstance(e, Readings) for e in seen) >= count:
            done.set()

    task = asyncio.create_task(source.run(emit))
    try:
        await asyncio.wait_for(done.wait(), 20)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return seen


def values(events: list[SourceEvent]) -> dict[str, object]:
    last = [e for e in events if isinstance(e, Readings)][-1]
    assert last.complete
    return {k: r.value for k, r in last.values.items()}


async def test_modbus_types_and_word_orders(plant: SimulatedPlant) -> None:
    config = agent_config(plant)
    press1 = config.controller("press-01")
    press2 = config.controller("press-02")
    assert isinstance(press1, ModbusControllerConfig) and isinstance(press2, ModbusControllerConfig)
    v1 = values(await first_scans(ModbusSource(press1), 1))
    assert v1 == {
        "temperature_sp": 180.0,
        "pressure_sp": 12.5,
        "recipe_no": 1,
        "lot_counter": v1["lot_counter"],
        "pressure_actual": 12.5,
        "speed_sp": 1200,
        "auto_mode": True,
        "maintenance_mode": False,
        "recipe_temperature": 180.0,
        "recipe_pressure": 12.5,
        "recipe_cycle_time": 4500,
    }
    assert isinstance(v1["lot_counter"], int) and v1["lot_counter"] >= 1000
    v2 = values(await first_scans(ModbusSource(press2), 1))
    assert v2["temperature_sp"] == 175.0  # float32, little word order
    assert v2["force_sp"] == pytest.approx(250.25)  # int32 little, scaled


async def test_modbus_sees_a_scenario_change(plant: SimulatedPlant) -> None:
    press = agent_config(plant).controller("press-01")
    assert isinstance(press, ModbusControllerConfig)
    await plant.write("press-01", "temperature_sp", 185.5, actor="j.doe")
    await plant.write("press-01", "pressure_sp", 13.7, actor="j.doe")
    v = values(await first_scans(ModbusSource(press), 1))
    assert (v["temperature_sp"], v["pressure_sp"]) == (185.5, pytest.approx(13.7))


async def test_opcua_resolves_namespace_and_reads(plant: SimulatedPlant) -> None:
    oven = agent_config(plant).controller("oven-01")
    assert isinstance(oven, OpcuaControllerConfig)
    await plant.write("oven-01", "temperature_sp", 230.0, actor="unknown")
    events = await first_scans(OpcuaSource(oven), 1)
    assert isinstance(events[0], Connected) and events[0].session.startswith("server-start:")
    v = values(events)
    assert v["temperature_sp"] == 230.0
    assert v["recipe_id"] == "R-100" and v["mode"] == "AUTO"
    reading = [e for e in events if isinstance(e, Readings)][-1].values["temperature_sp"]
    assert reading.source_ts is not None


async def test_opcua_chunks_reads_to_the_server_limit(plant: SimulatedPlant) -> None:
    oven = agent_config(plant).controller("oven-01")
    assert isinstance(oven, OpcuaControllerConfig)
    small = oven.model_copy(update={"max_nodes_per_read": 2})
    assert values(await first_scans(OpcuaSource(small), 1)) == values(
        await first_scans(OpcuaSource(oven), 1)
    )
