"""Fixtures: the simulated plant on free loopback ports and the agent's oven-01 config for it.

The plant is shared by the tests of a module (starting an asyncua server takes seconds), so
tests compare with the plant's current values rather than its initial ones: this ``plant``
replaces the resetting one of tests/agent/conftest.py here. On the way out the plant checks
that the oven received no write request at all: the source is read only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from agent.config import OpcuaControllerConfig, load_agent_config
from simulators.runtime import SimulatedPlant
from tests.agent.sources.factories import SAMPLE, on_plant
from tests.support.plant import sample_plant

OVEN = "oven-01"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def plant() -> AsyncIterator[SimulatedPlant]:
    """One plant per module (an asyncua server takes seconds to start); tests share it."""
    async with sample_plant() as running:
        yield running
        assert running.foreign_writes(OVEN) == 0, "the agent wrote to the oven"


@pytest.fixture
def oven(plant: SimulatedPlant) -> OpcuaControllerConfig:
    """oven-01 from config/agent.yaml, pointed at the simulated PLC, with fast reconnects."""
    config = load_agent_config(SAMPLE).controller(OVEN)
    assert isinstance(config, OpcuaControllerConfig)
    return on_plant(
        config, plant, poll_interval_s=0.1, reconnect_max_s=0.5,
        publishing_interval_ms=100.0, sampling_interval_ms=50.0,
    )
