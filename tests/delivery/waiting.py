"""Polling waits for the delivery tests (bounded by the loop clock; no wall-clock assertions)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from agent.spool import Spool


async def eventually(predicate: Callable[[], bool], limit_s: float) -> bool:
    """True as soon as ``predicate()`` holds, False once ``limit_s`` has passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        if predicate():
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)


async def wait_until_empty(spool: Spool, limit_s: float = 30.0) -> None:
    await eventually(lambda: spool.depth() == 0, limit_s)
    assert spool.depth() == 0, f"{spool.depth()} events still in the spool after {limit_s} s"
