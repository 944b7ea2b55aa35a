"""One simulated plant per test module (an OPC UA server takes seconds to start), reset
to its initial values before each test, and checked after each test for writes: the agent
must never write to a controller."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from simulators.runtime import SimulatedPlant
from tests.support.plant import sample_plant


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_plant() -> AsyncIterator[SimulatedPlant]:
    async with sample_plant() as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def plant(shared_plant: SimulatedPlant) -> AsyncIterator[SimulatedPlant]:
    await shared_plant.reset()
    yield shared_plant
    for controller in shared_plant.controllers():
        assert shared_plant.foreign_writes(controller) == 0, f"the agent wrote to {controller}"
