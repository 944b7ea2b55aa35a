"""The sample plant (config/plant.yaml) in this process, every controller on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from simulators.plant import load_plant
from simulators.runtime import SimulatedPlant

CONFIG = Path(__file__).resolve().parents[2] / "config"


@asynccontextmanager
async def sample_plant() -> AsyncIterator[SimulatedPlant]:
    """Start the sample plant with no process model (values move only when a test moves them).

    An OPC UA server takes seconds to start, so test directories share one per module.
    """
    config = load_plant(CONFIG / "plant.yaml")
    ports = {c.id: 0 for c in config.controllers()}
    async with SimulatedPlant(config, ports=ports, process=False) as running:
        yield running
