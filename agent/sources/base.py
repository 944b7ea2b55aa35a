"""The one contract every protocol source implements.

A source owns the connection to one controller. `run()` connects, reads (by polling or by
subscription: two implementations of this one contract), reconnects with capped backoff,
and reports what it sees through ``emit``: `Connected`, `Readings`, `Alive`, `Disconnected`. A
controller that answers but cannot give some tags (a Modbus exception for one request) is
connected: those tags are in ``Readings.bad`` with the reason, the rest are read. It never
writes to the controller: no source has a write path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from agent.contract import TagValue


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Reading:
    value: TagValue
    #: The controller's own timestamp where the protocol gives one (OPC UA), else None.
    source_ts: datetime | None = None


@dataclass(frozen=True, slots=True)
class Connected:
    at: datetime
    #: Changes when the controller's session or server restarted (possible program download).
    session: str = ""
    #: Tags this session cannot watch (their node does not resolve), with why: each is a
    #: monitoring gap on that tag until a later session resolves it.
    unresolved: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Readings:
    at: datetime
    values: dict[str, Reading]
    #: True for a full scan: every configured tag is in ``values`` or in ``bad``; False for a
    #: partial update (a subscription's notification).
    complete: bool = True
    actors: dict[str, str] = field(default_factory=dict)
    #: Tags the controller could not give a value for in this scan, and why (a Modbus
    #: exception answer, a damaged answer): the watcher reports a monitoring gap for them.
    bad: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Alive:
    """The controller answered at ``at`` though nothing changed (a subscription's keep-alive).

    A subscription carries only changes, so a quiet one says nothing for minutes; this is what
    tells the watcher the controller was still watched then, so that a monitoring gap starts
    at the last moment it was (not at the session's full read).
    """

    at: datetime


@dataclass(frozen=True, slots=True)
class Disconnected:
    at: datetime
    reason: str


SourceEvent = Connected | Readings | Alive | Disconnected
Emit = Callable[[SourceEvent], Awaitable[None]]


class Source(Protocol):
    controller_id: str

    async def run(self, emit: Emit) -> None:
        """Watch the controller until cancelled; never returns on its own."""
        ...
