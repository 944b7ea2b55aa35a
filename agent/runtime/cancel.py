"""A cancel that a library swallowed still ends our read loops.

aiokafka's consumer can catch the `CancelledError` meant for the task awaiting ``getmany``
(aio-libs/aiokafka#983 names the places). A ``while True`` loop around it then reads on, and a
stop that cancels the task waits for ever: seen as a classifier whose integrity reader stayed
"cancelling" at ``getmany`` after stop. Every ``while True`` loop of a long-running task
starts with `raise_if_cancel_swallowed()`; Kafka read loops get it from
`agent.kafka.consume.consume_batches`.
"""

from __future__ import annotations

import asyncio


def raise_if_cancel_swallowed() -> None:
    """At the top of a ``while True`` loop: once the running task has been asked to cancel,
    end it, even if the error never reached it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
