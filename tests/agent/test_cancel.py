"""Read loops end on cancel even when the library they await swallowed the CancelledError.

aiokafka's consumer can catch the cancel meant for the task awaiting ``getmany``
(aio-libs/aiokafka#983); a classifier's integrity reader then stayed "cancelling" after stop
and the process did not end. ``swallowing_read`` behaves as that ``getmany`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from agent.cancel import raise_if_cancel_swallowed
from simulators.runtime import SimulatedPlant
from tests.agent.test_agent_detects import config_for, running

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def swallowing_read() -> list[bytes]:
    try:
        await asyncio.sleep(0.02)
    except asyncio.CancelledError:
        pass  # what the library does: the caller never sees the cancel
    return []


async def test_a_while_true_loop_reads_on_after_a_swallowed_cancel() -> None:
    """The failure the helper exists for (so the test below means something)."""
    stop = False

    async def naive() -> None:
        while not stop:
            await swallowing_read()

    task = asyncio.create_task(naive())
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.wait({task}, timeout=0.3)
    still_running = not task.done()
    stop = True
    await asyncio.wait({task}, timeout=5)
    assert still_running


async def test_a_loop_that_checks_ends_and_reports_cancelled() -> None:
    rounds = 0

    async def reader() -> None:
        nonlocal rounds
        while True:
            raise_if_cancel_swallowed()
            await swallowing_read()
            rounds += 1

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.wait({task}, timeout=5)
    assert task.done() and task.cancelled()
    assert rounds >= 1



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
        agent._own(deaf(), "deaf")
    released.set()
    assert "agent task deaf did not stop within 5 s" in caplog.text
    assert not (tmp_path / "ready").exists()
