"""Read loops end on cancel even when the library they await swallowed the CancelledError.

aiokafka's consumer can catch the cancel meant for the task awaiting ``getmany``
(aio-libs/aiokafka#983); a classifier's integrity reader then stayed "cancelling" after stop
and the process did not end. ``swallowing_read`` behaves as that ``getmany`` does. (The agent's
bounded stop, for a task that ignores its cancel altogether: tests/agent/test_agent_stops.py.)
"""

from __future__ import annotations

import asyncio

from agent.runtime.cancel import raise_if_cancel_swallowed


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
