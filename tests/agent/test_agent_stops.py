"""The agent stops within its bound even when one of its tasks ignores the cancel.

`agent.runtime.tasks.OwnedTasks` waits at most 5 s for the agent's tasks and names the one it
left behind; `asyncio.wait_for` would have waited on for ever (a library can swallow a cancel,
see tests/agent/runtime/test_cancel.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from simulators.runtime import SimulatedPlant
from tests.agent.test_agent_detects import config_for, running

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def test_the_agent_stops_even_if_a_task_ignores_the_cancel(
    plant: SimulatedPlant, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A task that never ends on cancel is left behind after 5 s; the stop still completes
    (it used to wait on for ever inside `wait_for`)."""
    released = asyncio.Event()

    async def deaf() -> None:
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.05)

    async with running(config_for(plant, tmp_path)) as agent:
        agent.tasks.start(deaf(), "deaf")
    released.set()
    assert "agent task deaf did not stop within 5 s" in caplog.text
    assert not (tmp_path / "ready").exists()
