"""Owned tasks: a crash is logged and reported to the owner; a stop is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from agent.runtime.tasks import OwnedTasks, log_task_crash


async def test_a_crash_is_logged_kept_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    crashed: list[str] = []
    tasks = OwnedTasks("plant", on_crash=lambda task, exc: crashed.append(task.get_name()))

    async def fails() -> None:
        raise RuntimeError("boom")

    tasks.start(fails(), "fails")
    quiet = tasks.start(asyncio.sleep(60), "quiet")
    await asyncio.sleep(0.05)
    assert crashed == ["fails"]
    assert isinstance(tasks.failure, RuntimeError)
    assert "plant task fails failed" in caplog.text
    await tasks.stop(timeout_s=5)
    assert quiet.cancelled()


async def test_stop_is_bounded_and_names_the_task_left_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    released = asyncio.Event()

    async def deaf() -> None:
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.01)

    tasks = OwnedTasks("plant")
    task = tasks.start(deaf(), "deaf")
    await asyncio.sleep(0.05)  # inside its loop (a task cancelled before it starts just ends)
    await tasks.stop(timeout_s=0.2)
    assert not task.done()
    assert "plant task deaf did not stop within 0.2 s; left behind" in caplog.text
    released.set()
    await asyncio.wait({task}, timeout=5)
    assert tasks.failure is None


async def test_log_task_crash_names_the_task(caplog: pytest.LogCaptureFixture) -> None:
    async def fails() -> None:
        raise ValueError("bad")

    task = asyncio.create_task(fails(), name="drain")
    task.add_done_callback(log_task_crash)
    await asyncio.wait({task})
    await asyncio.sleep(0)  # done-callbacks run on the next loop iteration
    (record,) = [r for r in caplog.records if r.name == "agent.runtime.tasks"]
    assert (record.levelno, record.getMessage()) == (logging.ERROR, "task drain crashed")
