"""Fixtures for the simulator tests: the sample plant on free loopback ports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulators.modbus_plc import ModbusPLC
from simulators.plant import ModbusController, PlantConfig, load_plant
from simulators.runtime import SimulatedPlant

ROOT = Path(__file__).resolve().parents[2]
PLANT_FILE = ROOT / "config" / "plant.yaml"
SCENARIOS = sorted((ROOT / "config" / "scenarios").glob("*.yaml"))


@pytest.fixture
def plant_config() -> PlantConfig:
    return load_plant(PLANT_FILE)


def free_ports(config: PlantConfig) -> dict[str, int]:
    return {c.id: 0 for c in config.controllers()}


@pytest.fixture
async def plant(plant_config: PlantConfig) -> AsyncIterator[SimulatedPlant]:
    """The whole sample plant, every controller on a free port, no lot schedule running."""
    async with SimulatedPlant(plant_config, free_ports(plant_config), process=False) as running:
        yield running


def modbus_config(config: PlantConfig, controller: str) -> ModbusController:
    ctrl = config.controller(controller)
    assert isinstance(ctrl, ModbusController)
    return ctrl


@pytest.fixture
async def press(plant_config: PlantConfig) -> AsyncIterator[ModbusPLC]:
    """press-01 alone (fast: no OPC UA server)."""
    from simulators.broker import free_port

    plc = ModbusPLC(modbus_config(plant_config, "press-01"), free_port())
    await plc.start()
    try:
        yield plc
    finally:
        await plc.stop()
