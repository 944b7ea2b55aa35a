"""Running a source in a test: record what it emits, wait (bounded) for the event wanted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType

from agent.sources.base import Readings, Source, SourceEvent

#: Every wait in these tests is bounded by this (seconds).
WAIT_S = 15.0


class Recorder:
    """Runs a source in an owned task and records what it emits."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.events: list[SourceEvent] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def emit(self, event: SourceEvent) -> None:
        self.events.append(event)
        self._arrived.set()

    async def __aenter__(self) -> Recorder:
        self._task = asyncio.create_task(self.source.run(self.emit))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        if self._task.done() and not self._task.cancelled() and self._task.exception():
            raise AssertionError("the source died") from self._task.exception()

    async def next(self, match: Callable[[SourceEvent], bool], after: int = 0,
                   within: float = WAIT_S) -> tuple[int, SourceEvent]:
        """The first event at or after index ``after`` that matches, and its index."""

        async def scan() -> tuple[int, SourceEvent]:
            while True:
                for i in range(after, len(self.events)):
                    if match(self.events[i]):
                        return i, self.events[i]
                self._arrived.clear()
                await self._arrived.wait()

        async with asyncio.timeout(within):
            return await scan()


def is_complete(event: SourceEvent) -> bool:
    return isinstance(event, Readings) and event.complete


def changes(tag: str, value: object) -> Callable[[SourceEvent], bool]:
    def match(event: SourceEvent) -> bool:
        return (isinstance(event, Readings) and not event.complete and tag in event.values
                and event.values[tag].value == value)

    return match
