"""One publish response's notifications, taken from asyncua's queue at once and reported as
partial `Readings` (no server: asyncua's own notification types in a real asyncio queue)."""

from __future__ import annotations

import asyncio
import time
import types
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from asyncua import ua
from asyncua.client.ua_client import UaClientState
from asyncua.common.subscription import (
    DataChangeEvent,
    DataChangeNotif,
    StatusChangeEvent,
    Subscription,
)

from agent.errors import ControllerUnreachable
from agent.sources.base import Reading, Readings
from agent.sources.opcua import subscribe
from agent.sources.opcua.audit import ActorMatcher
from agent.sources.opcua.subscribe import SessionSubscription, take_queued

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Queued:
    """A subscription's notification queue, where asyncua's iterator mode keeps it."""

    def __init__(self, *events: Any) -> None:
        self._event_queue: asyncio.Queue[Any] = asyncio.Queue()
        self.last_publish_at = time.monotonic()
        for event in events:
            self._event_queue.put_nowait(event)

    def __aiter__(self) -> Queued:
        return self

    async def __anext__(self) -> Any:
        item = await self._event_queue.get()
        if item is None:
            raise StopAsyncIteration
        return item


def change(tag: int, value: float, seconds: int = 0, status: int = 0) -> DataChangeEvent:
    item = ua.MonitoredItemNotification()
    item.ClientHandle = subscribe._FIRST_HANDLE + tag
    item.Value = ua.DataValue(ua.Variant(value), StatusCode=ua.StatusCode(ua.UInt32(status)),
                              SourceTimestamp=cast(Any, T0 + timedelta(seconds=seconds)))
    return DataChangeEvent(node=cast(Any, None), value=value,
                           data=DataChangeNotif(cast(Any, None), item))


def watching(tags: int, *, audited: bool = False) -> tuple[SessionSubscription, list[Any]]:
    told: list[Any] = []

    async def emit(what: Any) -> None:
        told.append(what)

    client = types.SimpleNamespace(uaclient=types.SimpleNamespace(state=UaClientState.CONNECTED))
    session = types.SimpleNamespace(nodes=[], client=client)
    config = types.SimpleNamespace(id="press-01", publishing_interval_ms=100.0)
    watch = SessionSubscription(cast(Any, config), cast(Any, session), emit)
    for n in range(tags):
        watch.items.add(f"t{n}", f"ns=2;s=T{n}")
    watch.audited = audited
    return watch, told


def values(told: list[Any]) -> list[dict[str, Any]]:
    return [{tag: r.value for tag, r in t.values.items()} for t in told if isinstance(t, Readings)]


async def test_take_queued_takes_up_to_the_limit_in_order_and_sees_the_end() -> None:
    a, b, c, late = (change(n, float(n)) for n in range(4))
    sub = cast(Subscription, Queued(a, b, c, None, late))
    assert take_queued(sub, 2) == ([a, b], False)
    assert take_queued(sub, 10) == ([c], True)


def test_take_queued_takes_nothing_without_asyncuas_queue() -> None:
    assert take_queued(cast(Subscription, types.SimpleNamespace()), 10) == ([], False)


async def test_a_response_is_one_readings_and_a_repeated_tag_starts_the_next() -> None:
    watch, told = watching(5, audited=True)  # audit offered, none seen: nothing is held
    sub = Queued(change(0, 1.0), change(1, 2.0), change(2, 3.0, status=0x80000000),
                 change(0, 4.0, seconds=1))
    await watch._step(cast(Subscription, sub), ActorMatcher(2.0, 0.0))
    assert values(told) == [{"t0": 1.0, "t1": 2.0}, {"t0": 4.0}]  # the bad status is dropped
    assert all(not t.actors and not t.complete for t in told)
    assert sub._event_queue.empty()


async def test_a_first_notification_no_newer_than_the_full_read_is_dropped() -> None:
    watch, told = watching(2)
    watch._initial = {"t0": Reading(1.0, T0), "t1": Reading(2.0, T0)}
    await watch._step(cast(Subscription, Queued(change(0, 1.0), change(1, 5.0, seconds=1))),
                      ActorMatcher(2.0, 0.0))
    assert values(told) == [{"t1": 5.0}]


async def test_changes_before_a_bad_status_are_reported_then_the_session_is_dropped() -> None:
    watch, told = watching(3)
    ended = StatusChangeEvent(
        notification=ua.StatusChangeNotification(Status=ua.StatusCode(ua.UInt32(0x800A0000))))
    sub = Queued(change(0, 1.0), change(1, 2.0), ended, change(2, 3.0))
    with pytest.raises(ControllerUnreachable, match="subscription ended"):
        await watch._pump(cast(Subscription, sub), ActorMatcher(2.0, 0.0))
    assert values(told) == [{"t0": 1.0, "t1": 2.0}]


async def test_changes_before_the_end_of_the_subscription_are_reported() -> None:
    watch, told = watching(2)
    sub = Queued(change(0, 1.0), change(1, 2.0), None)
    with pytest.raises(ControllerUnreachable, match="closed"):
        await watch._pump(cast(Subscription, sub), ActorMatcher(2.0, 0.0))
    assert values(told) == [{"t0": 1.0, "t1": 2.0}]


async def test_a_server_seen_to_audit_holds_changes_for_their_audit_event() -> None:
    """The matcher is not skipped while changes wait for audit events."""
    watch, told = watching(1, audited=True)
    watch.last_audit = time.monotonic()
    matcher = ActorMatcher(2.0, 0.0)
    await watch._step(cast(Subscription, Queued(change(0, 1.0))), matcher)
    assert values(told) == [] and matcher.next_due() is not None
