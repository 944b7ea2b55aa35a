"""One simulated plant per test module (an OPC UA server takes seconds to start), reset
to its initial values before each test, and checked after each test for writes: the agent
must never write to a controller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from simulators.plant import load_plant
from simulators.runtime import SimulatedPlant

CONFIG = Path(__file__).parents[2] / "config"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_plant() -> AsyncIterator[SimulatedPlant]:
    config = load_plant(CONFIG / "plant.yaml")
    ports = {c.id: 0 for c in config.controllers()}
    async with SimulatedPlant(config, ports=ports, process=False) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def plant(shared_plant: SimulatedPlant) -> AsyncIterator[SimulatedPlant]:
    await shared_plant.reset()
    yield shared_plant
    for controller in shared_plant.controllers():
        assert shared_plant.foreign_writes(controller) == 0, f"the agent wrote to {controller}"
