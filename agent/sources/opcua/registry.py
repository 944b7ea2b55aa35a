"""asyncua's registry of a subscription's monitored items, without an object per data change item.

asyncua keeps a ``SubscriptionItemData`` and a ``Node`` for every monitored item
(``Subscription._monitored_items``, a dict by client handle): ~350 bytes an item, 21 MB for the
60,000 items of twenty servers. It needs them for two things: to route a notification (the
item's entry must exist and name a node) and to create the items again when it re-creates a
subscription that went quiet (its stale-subscription watchdog). `MonitoredItems` takes the
dict's place after the items are created (`compact`): a data change item is then only its
server handle in an array, notifications find one shared entry, and anything that walks the
registry (``values()``, ``items()``: re-creating, unsubscribing) gets full entries rebuilt
from the item's own request (``request_of``), so a re-created subscription asks for exactly
what the first one did. Entries that are not compacted (audit events, items being created)
stay as asyncua made them.

Relies on asyncua 2.1's use of the registry: ``get``, ``[]``, ``pop``, ``del``, ``values``,
``items`` and ``clear`` (see ``asyncua/common/subscription.py``).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator
from typing import Any

from asyncua import ua
from asyncua.common.node import Node
from asyncua.common.subscription import Subscription, SubscriptionItemData
from asyncua.ua.attribute_ids import AttributeIds

#: A compacted handle with no server handle (refused, or never created).
_NONE = 0
#: Builds the create request of a data change item from its client handle (None: not one).
RequestOf = Callable[[int], ua.MonitoredItemCreateRequest | None]


def item_data(request: ua.MonitoredItemCreateRequest, node: Node,
              server_handle: int) -> SubscriptionItemData:
    """The entry asyncua itself makes for ``request`` (see
    ``Subscription.create_monitored_items``), created as ``server_handle``."""
    data = SubscriptionItemData()
    data.client_handle = request.RequestedParameters.ClientHandle
    data.server_handle = server_handle
    data.node = node
    data.attribute = request.ItemToMonitor.AttributeId
    data.mfilter = request.RequestedParameters.Filter
    data.queuesize = request.RequestedParameters.QueueSize
    data.monitoring_mode = request.MonitoringMode
    data.sampling_interval = request.RequestedParameters.SamplingInterval
    return data


class MonitoredItems(dict[int, SubscriptionItemData]):
    """Client handle -> asyncua's item entry, data change items kept as server handles.

    Compacted handles are ``first`` onwards, consecutive; ``request_of`` rebuilds an item's
    request from its handle.
    """

    def __init__(self, sub: Subscription, first: int, request_of: RequestOf) -> None:
        super().__init__()
        self._sub = sub
        self._first = first
        self._request_of = request_of
        #: Server handle by ``client handle - first`` (0: none).
        self._server = array("Q")
        self._count = 0
        # what a notification finds: an entry that names a node (asyncua drops one without)
        self._shared = SubscriptionItemData()
        self._shared.node = Node(sub.server, ua.NodeId())
        self._shared.attribute = AttributeIds.Value

    @classmethod
    def install(cls, sub: Subscription, first: int, request_of: RequestOf) -> MonitoredItems:
        """Take the place of ``sub``'s registry (keeping what it holds)."""
        registry = cls(sub, first, request_of)
        registry.update(sub._monitored_items)
        sub._monitored_items = registry
        return registry

    def compact(self) -> None:
        """Keep every created data change item (handle ``first`` on) as its server handle."""
        for handle in [h for h in dict.keys(self) if h >= self._first]:
            data = dict.pop(self, handle)
            index = handle - self._first
            if index >= len(self._server):
                self._server.extend([_NONE] * (index + 1 - len(self._server)))
            if data.server_handle is None:  # still being created: keep asyncua's entry
                dict.__setitem__(self, handle, data)
                continue
            if self._server[index] == _NONE:
                self._count += 1
            self._server[index] = data.server_handle

    def _compacted(self, handle: int) -> int:
        """The server handle of a compacted item (0: none)."""
        index = handle - self._first
        return self._server[index] if 0 <= index < len(self._server) else _NONE

    def _rebuilt(self, handle: int) -> SubscriptionItemData | None:
        server = self._compacted(handle)
        request = self._request_of(handle) if server != _NONE else None
        if request is None:
            return None
        return item_data(request, Node(self._sub.server, request.ItemToMonitor.NodeId), server)

    def _forget(self, handle: int) -> bool:
        if self._compacted(handle) == _NONE:
            return False
        self._server[handle - self._first] = _NONE
        self._count -= 1
        return True

    def get(self, handle: int, default: Any = None) -> Any:
        # asyncua's lookup of every notification: `_compacted` inlined (a call less each)
        found = dict.get(self, handle)
        if found is not None:
            return found
        index = handle - self._first
        if 0 <= index < len(self._server) and self._server[index] != _NONE:
            return self._shared
        return default

    def __getitem__(self, handle: int) -> SubscriptionItemData:
        found = dict.get(self, handle)
        if found is None:
            found = self._rebuilt(handle)
        if found is None:
            raise KeyError(handle)
        return found

    def __contains__(self, handle: object) -> bool:
        return dict.__contains__(self, handle) or (
            isinstance(handle, int) and self._compacted(handle) != _NONE)

    def __delitem__(self, handle: int) -> None:
        if not dict.__contains__(self, handle) and self._forget(handle):
            return
        dict.__delitem__(self, handle)

    def pop(self, handle: int, *default: Any) -> Any:
        if dict.__contains__(self, handle):
            return dict.pop(self, handle)
        found = self._rebuilt(handle)
        if found is not None:
            self._forget(handle)
            return found
        if default:
            return default[0]
        raise KeyError(handle)

    def __len__(self) -> int:
        return dict.__len__(self) + self._count

    def __iter__(self) -> Iterator[int]:
        yield from list(dict.keys(self))
        yield from (self._first + i for i, s in enumerate(self._server) if s != _NONE)

    def keys(self) -> Any:
        return list(self)

    def values(self) -> Any:
        return [self[h] for h in self]

    def items(self) -> Any:
        return [(h, self[h]) for h in self]

    def clear(self) -> None:
        dict.clear(self)
        self._server = array("Q")
        self._count = 0
