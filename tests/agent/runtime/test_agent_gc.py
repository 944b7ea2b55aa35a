"""The agent runs with its gc thresholds and, once ready, has frozen what it built after
start-up (its tasks, sources, subscriptions), so full collections no longer walk it."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.runtime.gc_tuning import AGENT_THRESHOLDS
from simulators.runtime import SimulatedPlant
from tests.agent.test_agent_detects import config_for, running

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


async def test_a_ready_agent_has_frozen_what_it_started(
    plant: SimulatedPlant, tmp_path: Path
) -> None:
    gc.unfreeze()
    async with running(config_for(plant, tmp_path)):
        assert gc.get_threshold() == AGENT_THRESHOLDS
        # The watch tasks start after `Agent.run` tuned the collector: only the freeze once
        # ready takes them out of the generations (frozen objects are in none of them).
        watching = [t for t in asyncio.all_tasks() if t.get_name().startswith("watch ")]
        assert watching
        tracked = {id(o) for o in gc.get_objects()}
        assert not [t.get_name() for t in watching if id(t) in tracked]
