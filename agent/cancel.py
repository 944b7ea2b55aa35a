"""A cancel that a library swallowed still ends our read loops.

aiokafka's consumer can catch the `CancelledError` meant for the task awaiting ``getmany``
(aio-libs/aiokafka#983 names the places). A ``while True`` loop around it then reads on, and a
stop that cancels the task waits for ever: seen as a classifier whose integrity reader stayed
"cancelling" at ``getmany`` after stop. Loops around such calls run
``while not cancel_requested()`` and re-raise the cancel after the loop.
"""

from __future__ import annotations

import asyncio


def cancel_requested() -> bool:
    """True once the running task has been asked to cancel, even if the error never reached it."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def raise_if_cancel_swallowed() -> None:
    """At the top of a ``while True`` loop: end it with the cancel a library swallowed."""
    if cancel_requested():
        raise asyncio.CancelledError
