"""Owned background tasks: started with a name, watched, cancelled and awaited within a bound.

No fire-and-forget ``create_task``: a task that dies must say so (`log_task_crash`, or the
owner's ``on_crash``), and a stop must end, even when a task ignores its cancel (a library can
swallow it): `OwnedTasks.stop` waits at most its bound and names what it left behind.
(``asyncio.wait_for`` would wait on after its timeout for such a task.)

Example::

    >>> tasks = OwnedTasks("agent", on_crash=lambda task, exc: agent.stop())
    >>> tasks.start(watcher.run(), "watch press-01")
    >>> await tasks.stop(timeout_s=5.0)
    >>> if tasks.failure is not None: raise tasks.failure
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

_log = logging.getLogger(__name__)

OnCrash = Callable[["asyncio.Task[Any]", BaseException], None]


def task_counter(loop: asyncio.AbstractEventLoop | None = None) -> Callable[[], int]:
    """A function that counts the unfinished tasks of ``loop`` (default: the running one), for
    a gauge's ``set_function``: a count that keeps growing over hours is a task leak (the soak
    test, tests/soak, watches it). Safe from the metrics server's thread: `asyncio.all_tasks`
    copies its set and retries when it changes under it."""
    owner = loop or asyncio.get_running_loop()
    return lambda: len(asyncio.all_tasks(owner))


def log_task_crash(task: asyncio.Task[Any]) -> None:
    """Done-callback for a task that runs on its own: it must never die silently."""
    if not task.cancelled() and task.exception() is not None:
        _log.error("task %s crashed", task.get_name(), exc_info=task.exception())


class OwnedTasks:
    """The background tasks of one owner (``"agent"``, ``"classifier"``)."""

    def __init__(
        self, owner: str, *, log: logging.Logger | None = None, on_crash: OnCrash | None = None
    ) -> None:
        self.owner = owner
        self._log = log or _log
        self._on_crash = on_crash
        self._tasks: list[asyncio.Task[Any]] = []
        #: The first exception a task ended with (None while every task is fine).
        self.failure: BaseException | None = None

    def start(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run ``coro`` as a named task owned here."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._done)
        self._tasks.append(task)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        self._log.error("%s task %s failed", self.owner, task.get_name(), exc_info=exc)
        if self.failure is None:
            self.failure = exc
        if self._on_crash is not None:
            self._on_crash(task, exc)

    async def stop(self, timeout_s: float) -> None:
        """Cancel every task and wait for them, at most ``timeout_s``; name any left behind."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, stuck = await asyncio.wait(tasks, timeout=timeout_s)
        for task in stuck:
            self._log.warning(
                "%s task %s did not stop within %g s; left behind",
                self.owner, task.get_name(), timeout_s,
            )
