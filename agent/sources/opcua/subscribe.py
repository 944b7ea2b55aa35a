"""The subscription of one OPC UA session: monitored items in, partial `Readings` out.

One subscription per session carries a monitored item per tag (sampling interval per
controller or per tag, an absolute deadband where the tag sets one) and, where the server
offers them, ``AuditWriteUpdateEventType`` events from the Server object, which name the
user who wrote a node (see `agent.sources.opcua.audit`). The iterator's queue is sized to
the item count; if it still overflows, the session is dropped (asyncua's DISCONNECT policy)
so that the next session's full read resynchronises instead of silently losing changes.

The subscription asks the server for a keep-alive about every ``KEEPALIVE_S`` while nothing
changes (asyncua's default asks for one every 45 minutes), and reports each publish response
after a quiet spell as `Alive`: a monitoring gap then starts at the last moment the server was
heard from, not at the session's full read.

Notifications are handled a publish response at a time: everything already queued is taken
before anything is reported, so the changes of one response become one `Readings` (one spool
transaction) and an audit event finds its data change when both travel in one response. A
change waits longer for its audit event (one publishing interval) only while the server is
seen to audit: it sent an audit event in the last ``AUDIT_LIVE_S``. A server that offers audit
events but raises none for what changes (process logic, not Writes) so adds no latency.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from asyncua import ua
from asyncua.client.ua_client import UaClientState
from asyncua.common.subscription import (
    DataChangeEvent,
    OpcEvent,
    OverflowPolicy,
    StatusChangeEvent,
    SubEvent,
    Subscription,
)
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.uaerrors import UaError

from agent import metrics
from agent.errors import ControllerUnreachable
from agent.runtime.cancel import raise_if_cancel_swallowed
from agent.sources.base import Alive, Emit, Reading, Readings, utcnow
from agent.sources.opcua.audit import ActorMatcher, Attributed, Change
from agent.sources.opcua.config import OpcuaControllerConfig, OpcuaTag
from agent.sources.opcua.decode import audited_write, plain_value
from agent.sources.opcua.registry import MonitoredItems
from agent.sources.opcua.session import OpcuaSession

log = logging.getLogger(__name__)

#: How long an audit event waits for the data change of its node.
AUDIT_WINDOW_S = 2.0
#: Changes wait one publishing interval for their audit event while the server sent one this
#: recently (monotonic seconds); otherwise only for the rest of their publish response.
AUDIT_LIVE_S = 300.0
#: At most this many queued notifications are taken before reporting.
MAX_BATCH = 20_000
#: How often a quiet subscription checks that the session is still up.
LIVENESS_S = 1.0
#: How often a quiet subscription asks the server for a keep-alive (a publish response with
#: no notification); `Alive` is reported at most this often.
KEEPALIVE_S = 1.0
#: asyncua re-creates a subscription after this many keep-alive periods without a publish
#: response (its default, 1.5, is ~1.5 s here): a server busy creating thousands of monitored
#: items misses that, and the re-creation then races the creation (BadSubscriptionIdInvalid,
#: the session dropped and started again).
STALE_KEEPALIVES = 10.0
#: A change that waits for no audit event is held this long: to the end of its response.
_END_OF_RESPONSE_S = 1e-3
#: Client handles of data-change items start here (asyncua numbers its own from 201).
_FIRST_HANDLE = 1_000_000


@dataclass(frozen=True, slots=True)
class Item:
    tag: str
    node: str


class ItemTable:
    """Client handle -> `Item` of a subscription's data-change items.

    Handles are handed out consecutively from ``first``, so the table is a list indexed by
    ``handle - first``, not a dict keyed by 60,000 handle ints. A refused item's slot is
    emptied: its handle then finds nothing, like a handle never handed out.

    >>> items = ItemTable(1000)
    >>> items.add("sp_1", "ns=2;s=A")
    1000
    >>> items.get(1000)
    Item(tag='sp_1', node='ns=2;s=A')
    """

    __slots__ = ("_first", "_items", "_live")

    def __init__(self, first: int) -> None:
        self._first = first
        self._items: list[Item | None] = []
        self._live = 0

    def add(self, tag: str, node: str) -> int:
        """Keep an item; its client handle."""
        self._items.append(Item(tag, node))
        self._live += 1
        return self._first + len(self._items) - 1

    def get(self, handle: int) -> Item | None:
        index = handle - self._first
        return self._items[index] if 0 <= index < len(self._items) else None

    def pop(self, handle: int) -> Item:
        """Forget a handle's item (KeyError: none)."""
        item = self.get(handle)
        if item is None:
            raise KeyError(handle)
        self._items[handle - self._first] = None
        self._live -= 1
        return item

    def __len__(self) -> int:
        return self._live


def subscription_parameters(publishing_interval_ms: float) -> ua.CreateSubscriptionParameters:
    """asyncua's defaults, but a keep-alive about every `KEEPALIVE_S` (at least every interval)."""
    params = ua.CreateSubscriptionParameters()
    params.RequestedPublishingInterval = publishing_interval_ms
    keepalive = max(1, math.ceil(KEEPALIVE_S * 1000 / max(publishing_interval_ms, 1.0)))
    params.RequestedMaxKeepAliveCount = keepalive
    # The lifetime must be at least three keep-alives (OPC UA Part 4, 5.13.2).
    params.RequestedLifetimeCount = max(10_000, 3 * keepalive)
    params.MaxNotificationsPerPublish = 10_000
    params.PublishingEnabled = True
    params.Priority = 0
    return params


def item_request(tag: OpcuaTag, node: ua.NodeId, handle: int,
                 config: OpcuaControllerConfig) -> ua.MonitoredItemCreateRequest:
    """A monitored item for one tag's value, with its sampling interval and deadband."""
    params = ua.MonitoringParameters()
    params.ClientHandle = handle
    params.SamplingInterval = (
        tag.sampling_interval_ms if tag.sampling_interval_ms is not None
        else config.sampling_interval_ms
    )
    params.QueueSize = 1
    params.DiscardOldest = True
    if tag.deadband > 0:
        flt = ua.DataChangeFilter()
        flt.Trigger = ua.DataChangeTrigger.StatusValue
        flt.DeadbandType = ua.DeadbandType.Absolute
        flt.DeadbandValue = tag.deadband
        params.Filter = flt
    request = ua.MonitoredItemCreateRequest()
    request.ItemToMonitor = ua.ReadValueId(NodeId=node, AttributeId=AttributeIds.Value)
    request.MonitoringMode = ua.MonitoringMode.Reporting
    request.RequestedParameters = params
    return request


class SessionSubscription:
    """Watches one session until it is lost; raises a connection error then.

    Created before the session's full read (`start`), so that a change made during the read
    is still notified, with its audit event; reported after it (`pump`).
    """

    def __init__(self, config: OpcuaControllerConfig, session: OpcuaSession, emit: Emit,
                 last_audit: float | None = None) -> None:
        self.config = config
        self.session = session
        self.emit = emit
        self.items = ItemTable(_FIRST_HANDLE)
        self.audited = False
        self.sub: Subscription | None = None
        #: The full read's reading per tag, until the tag's first notification.
        self._initial: dict[str, Reading] = {}
        #: When the last audit event arrived (monotonic s), None before the first. Carried over
        #: from the session before: the server's audit events outlive a session, and without
        #: it the first change after a reconnect would not wait for its audit event (no actor).
        self.last_audit: float | None = last_audit
        #: The last publish response told (as `Alive` or by `Readings`), and when it was told
        #: (monotonic s).
        self._heard: float | None = None
        self._told: float | None = None

    async def start(self) -> None:
        """Create the subscription: a monitored item per tag, and audit events if offered."""
        size = 2 * len(self.session.nodes) + 1000
        self.session.client._stale_check_margin = STALE_KEEPALIVES
        self.sub = await self.session.client.create_subscription(
            subscription_parameters(self.config.publishing_interval_ms), handler=None,
            queue_maxsize=size, overflow=OverflowPolicy.DISCONNECT,
        )
        await self._monitor_values(self.sub)
        if self.config.audit_events:
            self.audited = await self._monitor_audit(self.sub)

    async def pump(self, read: dict[str, Reading] | None = None) -> None:
        """Report notifications as partial `Readings` until the session is lost.

        ``read``: the session's full read. A tag's first notification (the item's initial
        value) that is not newer than what the read saw is dropped: already reported.
        """
        assert self.sub is not None, "start() first"
        # a copy: ``read`` went out in the scan's `Readings` too; not kept for the session's life
        self._initial = dict(read or {})
        del read
        self._heard = self.sub.last_publish_at  # heard before the read: the read tells it
        await self._pump(self.sub, ActorMatcher(AUDIT_WINDOW_S, 0.0))

    async def _monitor_values(self, sub: Subscription) -> None:
        # requests a chunk at a time: all of them at once (~1 KB each) only to be freed again
        # leaves the heap fragmented around what the session keeps
        registry = MonitoredItems.install(sub, _FIRST_HANDLE, self._request_of)
        step = self.session.max_items_per_call
        nodes = self.session.nodes
        for start in range(0, len(nodes), step):
            chunk = [item_request(tag, node, self.items.add(tag.name, node.to_string()),
                                  self.config)
                     for tag, node in nodes[start : start + step]]
            results = await sub.create_monitored_items(chunk)
            registry.compact()
            self._report_refused(chunk, results)

    def _request_of(self, handle: int) -> ua.MonitoredItemCreateRequest | None:
        """The create request of a data change item (None: refused, or no such handle)."""
        if self.items.get(handle) is None:
            return None
        tag, node = self.session.nodes[handle - _FIRST_HANDLE]
        return item_request(tag, node, handle, self.config)

    def _report_refused(self, chunk: list[ua.MonitoredItemCreateRequest],
                        results: list[int | ua.StatusCode]) -> None:
        for request, result in zip(chunk, results, strict=True):
            if isinstance(result, ua.StatusCode):
                item = self.items.pop(request.RequestedParameters.ClientHandle)
                metrics.READS.labels(self.config.id, "bad_status").inc()
                log.error("%s: the server refused to monitor tag %s (%s); it is only compared "
                          "on reconnect", self.config.id, item.tag, result.name)

    async def _monitor_audit(self, sub: Subscription) -> bool:
        """Subscribe to audit write events on the Server object, where the server has them."""
        try:
            await sub.subscribe_events(ObjectIds.Server, ObjectIds.AuditWriteUpdateEventType)
        except UaError as exc:
            log.info("%s offers no audit write events (%s); changes carry no actor",
                     self.config.id, exc)
            return False
        return True

    async def _pump(self, sub: Subscription, matcher: ActorMatcher) -> None:
        try:
            while True:
                raise_if_cancel_swallowed()
                await self._step(sub, matcher)
        except ControllerUnreachable:
            await self._emit(matcher.due(math.inf))  # held changes are real: report them
            raise

    async def _step(self, sub: Subscription, matcher: ActorMatcher) -> None:
        due = matcher.next_due()
        wait = LIVENESS_S if due is None else max(0.0, min(LIVENESS_S, due - time.monotonic()))
        released: list[Attributed] = []
        try:
            event = await next_event(sub, wait)
            if event is not None:  # the rest of what is queued: its publish response
                events, closed = take_queued(sub, MAX_BATCH - 1)
                events.insert(0, event)
                self._on_events(events, matcher, released)
                if closed:
                    raise StopAsyncIteration
        except StopAsyncIteration:
            await self._emit(released)  # taken from the matcher already: report them
            raise ControllerUnreachable("the subscription was closed",
                                        controller=self.config.id) from None
        except ControllerUnreachable:
            await self._emit(released)
            raise
        now = time.monotonic()
        # the end of the response: a change that waits for no audit event goes now
        end = now + _END_OF_RESPONSE_S if matcher.hold_s <= _END_OF_RESPONSE_S else now
        released += matcher.due(end)
        await self._emit(released)
        self._check_alive()
        await self._report_heard(sub, bool(released))

    def _on_events(self, events: list[SubEvent], matcher: ActorMatcher,
                   released: list[Attributed]) -> None:
        """Add to ``released`` the changes one publish response's notifications release, in
        order (added as they go: a ControllerUnreachable keeps those already released).

        When nothing waits for an audit event (nothing held, no audit write unmatched, no
        audit event in the response, no hold beyond the response), every change goes out at
        the end of the response without an actor, as the matcher would release it: the
        matcher is skipped (its bookkeeping per notification was most of this layer's cost).
        """
        matcher.hold_s = self._hold_s()
        if (matcher.hold_s <= _END_OF_RESPONSE_S and matcher.idle()
                and all(type(event) is DataChangeEvent for event in events)):
            changes = map(self._change, cast(list[DataChangeEvent], events))
            released.extend((change, None) for change in changes if change is not None)
            return
        for event in events:
            matcher.hold_s = self._hold_s()  # an audit event in this response may change it
            released += self._on_event(event, matcher)

    def _hold_s(self) -> float:
        """How long a change waits for its audit event (see `AUDIT_LIVE_S`)."""
        live = self.last_audit is not None and time.monotonic() - self.last_audit < AUDIT_LIVE_S
        if self.audited and live:
            return self.config.publishing_interval_ms / 1000
        return _END_OF_RESPONSE_S

    def _on_event(self, event: SubEvent, matcher: ActorMatcher) -> list[Attributed]:
        now = time.monotonic()
        if isinstance(event, DataChangeEvent):
            change = self._change(event)
            return [] if change is None else matcher.change(change, now)
        if isinstance(event, OpcEvent):
            write = audited_write(event)
            if write is not None:
                self.last_audit = now
            return [] if write is None else matcher.audit(write, now)
        if isinstance(event, StatusChangeEvent):
            status = event.notification.Status
            if not status.is_good():
                raise ControllerUnreachable(f"the subscription ended: {status.name}",
                                            controller=self.config.id)
        return []

    def _change(self, event: DataChangeEvent) -> Change | None:
        notification = event.data.monitored_item
        item = self.items.get(notification.ClientHandle)
        dv = notification.Value
        if item is None or dv is None:
            return None
        if dv.StatusCode is not None and not dv.StatusCode.is_good():
            metrics.READS.labels(self.config.id, "bad_status").inc()
            return None
        value = dv.Value.Value if dv.Value is not None else None
        reading = Reading(plain_value(value), dv.SourceTimestamp)
        seen = self._initial.pop(item.tag, None)
        if seen is not None and not_newer(reading, seen):
            return None
        return Change(item.tag, item.node, reading)

    async def _emit(self, released: list[Attributed]) -> None:
        for batch in batches(released):
            values = {c.tag: c.reading for c, _ in batch}
            actors = {c.tag: user for c, user in batch if user is not None}
            await self.emit(Readings(utcnow(), values, complete=False, actors=actors))

    async def _report_heard(self, sub: Subscription, reported: bool) -> None:
        """Report a publish response not yet told as `Alive` (at most every `KEEPALIVE_S`),
        unless the `Readings` of this step told it already: a quiet subscription hears only
        keep-alives, and they are what proves it was still watching."""
        heard = sub.last_publish_at
        if heard is None or (self._heard is not None and heard <= self._heard):
            return
        now = time.monotonic()
        if not reported and self._told is not None and now - self._told < KEEPALIVE_S:
            return
        self._heard, self._told = heard, now
        if not reported:
            await self.emit(Alive(utcnow() - timedelta(seconds=max(0.0, now - heard))))

    def _check_alive(self) -> None:
        if self.session.client.uaclient.state is not UaClientState.CONNECTED:
            raise ControllerUnreachable("the connection was lost", controller=self.config.id)
        metrics.LAST_GOOD_READ.labels(self.config.id).set(time.time())


async def next_event(sub: Subscription, wait: float) -> SubEvent | None:
    """The next notification, or None after ``wait`` seconds.

    Not ``Subscription.next_event``: it uses ``asyncio.wait_for``, which on Python 3.11 swallows
    a cancellation that arrives together with a notification, and the source then cannot be
    stopped. ``asyncio.timeout`` keeps the cancellation.

    A notification already queued is taken at once, with no timer: a publish response brings
    hundreds, and arming and cancelling a timer for each (~3 µs) cost a sixth of what the bare
    asyncua loop spends per notification.
    """
    if _queued(sub):
        return await anext(sub)  # does not wait: nothing for a cancellation to meet
    try:
        async with asyncio.timeout(wait):
            return await anext(sub)
    except TimeoutError:
        return None


def take_queued(sub: Subscription, limit: int) -> tuple[list[SubEvent], bool]:
    """Up to ``limit`` notifications already queued, without awaiting (no coroutine per
    notification), and whether the subscription's end (asyncua's None) was met after them.
    With other asyncua internals: none taken, and the caller's next step awaits them."""
    queue = getattr(sub, "_event_queue", None)
    events: list[SubEvent] = []
    if not isinstance(queue, asyncio.Queue):
        return events, False
    get = queue.get_nowait
    for _ in range(min(limit, queue.qsize())):
        event = get()
        if event is None:
            return events, True
        events.append(event)
    return events, False


def _queued(sub: Subscription) -> bool:
    """Whether a notification waits in the subscription's queue (asyncua's iterator mode keeps
    them in ``_event_queue``; with other internals: False, and the timed path is taken)."""
    queue = getattr(sub, "_event_queue", None)
    return isinstance(queue, asyncio.Queue) and not queue.empty()


def not_newer(reading: Reading, seen: Reading) -> bool:
    """Whether a notification tells nothing beyond ``seen`` (older or the same)."""
    if reading.source_ts is not None and seen.source_ts is not None:
        return reading.source_ts <= seen.source_ts
    return reading.value == seen.value


def batches(released: list[Attributed]) -> Iterator[list[Attributed]]:
    """Consecutive runs with each tag at most once, so that no change hides another."""
    batch: list[Attributed] = []
    seen: set[str] = set()
    for change, user in released:
        if change.tag in seen:
            yield batch
            batch, seen = [], set()
        batch.append((change, user))
        seen.add(change.tag)
    if batch:
        yield batch
