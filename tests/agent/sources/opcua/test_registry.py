"""The compact registries of a subscription's items: handle -> tag (`ItemTable`) and asyncua's
own per-item entries (`MonitoredItems`), pure, and against the simulated oven: a subscription
asyncua re-creates (its stale-subscription watchdog) still watches every item, and a change
then still reaches the agent under the right tag."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from asyncua import ua
from asyncua.common.node import Node
from asyncua.common.subscription import SubscriptionItemData

from agent.config import OpcuaControllerConfig
from agent.sources.base import Readings, SourceEvent
from agent.sources.opcua import OpcuaSource
from agent.sources.opcua.registry import MonitoredItems, item_data
from agent.sources.opcua.session import close_quietly, open_session
from agent.sources.opcua.subscribe import ItemTable, SessionSubscription
from simulators.runtime import SimulatedPlant
from tests.agent.sources.opcua.conftest import OVEN
from tests.agent.sources.running import Recorder, changes

FIRST = 1_000_000


def test_item_table_maps_consecutive_handles_and_forgets_refused_ones() -> None:
    items = ItemTable(FIRST)
    handles = [items.add(f"sp_{n}", f"ns=2;s=SP{n}") for n in range(3)]
    assert handles == [FIRST, FIRST + 1, FIRST + 2]
    assert items.pop(FIRST + 1).tag == "sp_1"
    assert len(items) == 2
    assert [items.get(h) is not None for h in handles] == [True, False, True]
    last = items.get(FIRST + 2)
    assert last is not None and last.node == "ns=2;s=SP2"
    assert items.get(FIRST - 1) is None and items.get(FIRST + 3) is None
    with pytest.raises(KeyError):
        items.pop(FIRST + 1)


def _request(n: int, deadband: float = 0.0) -> ua.MonitoredItemCreateRequest:
    params = ua.MonitoringParameters()
    params.ClientHandle = FIRST + n
    params.SamplingInterval = 100.0 + n
    params.QueueSize = 1
    if deadband:
        flt = ua.DataChangeFilter()
        flt.DeadbandType = ua.DeadbandType.Absolute
        flt.DeadbandValue = deadband
        params.Filter = flt
    request = ua.MonitoredItemCreateRequest()
    request.ItemToMonitor = ua.ReadValueId(NodeId=ua.NodeId(f"SP{n}", 2),
                                           AttributeId=ua.AttributeIds.Value)
    request.RequestedParameters = params
    return request


def _fields(data: SubscriptionItemData) -> tuple[Any, ...]:
    assert data.node is not None
    return (data.client_handle, data.server_handle, data.node.nodeid.to_string(), data.attribute,
            data.mfilter, data.queuesize, data.monitoring_mode, data.sampling_interval)


def _requested(registry: dict[int, SubscriptionItemData]) -> list[tuple[Any, ...]]:
    """What each item asks for (all but its server handle), in handle order."""
    return sorted(_fields(d)[0:1] + _fields(d)[2:] for d in registry.values())


def _created(registry: dict[int, SubscriptionItemData], n: int, server: int | None) -> None:
    """What asyncua's create_monitored_items leaves in the registry for request ``n``."""
    request = _request(n, deadband=0.5 * n)
    data = item_data(request, Node(None, request.ItemToMonitor.NodeId), 0)  # type: ignore[arg-type]
    data.server_handle = server
    registry[FIRST + n] = data


def test_monitored_items_keep_server_handles_and_rebuild_what_asyncua_made() -> None:
    audit = SubscriptionItemData()
    sub: Any = SimpleNamespace(server=None, _monitored_items={201: audit})
    refused = {2}

    def request_of(handle: int) -> ua.MonitoredItemCreateRequest | None:
        n = handle - FIRST
        return None if n in refused else _request(n, deadband=0.5 * n)

    registry = MonitoredItems.install(sub, FIRST, request_of)
    assert sub._monitored_items is registry and registry.get(201) is audit
    for n in range(4):
        _created(registry, n, 5000 + n)
    made = {h: _fields(d) for h, d in dict.items(registry) if h >= FIRST}
    del registry[FIRST + 2]  # the server refused it: asyncua deletes its entry
    del made[FIRST + 2]
    _created(registry, 4, None)  # still being created
    registry.compact()
    assert dict.__len__(registry) == 2, "only the audit item and the one being created"
    assert len(registry) == 5 and FIRST + 3 in registry and FIRST + 2 not in registry
    shared = registry.get(FIRST)
    assert shared is registry.get(FIRST + 3) and shared.node is not None
    assert registry.get(FIRST + 2) is None and registry.get(FIRST + 99) is None
    rebuilt = {h: _fields(d) for h, d in registry.items() if h >= FIRST and h != FIRST + 4}
    assert rebuilt == made
    assert _fields(registry.pop(FIRST + 1)) == made[FIRST + 1]
    assert registry.pop(FIRST + 1, None) is None and len(registry) == 4
    with pytest.raises(KeyError):
        registry[FIRST + 1]
    registry.clear()
    assert len(registry) == 0 and registry.get(FIRST) is None


@pytest.mark.integration
@pytest.mark.asyncio(loop_scope="module")
async def test_a_recreated_subscription_still_reports_changes_by_tag(
    plant: SimulatedPlant, oven: OpcuaControllerConfig
) -> None:
    events: list[SourceEvent] = []

    async def emit(event: SourceEvent) -> None:
        events.append(event)

    session = await open_session(oven)
    watch = SessionSubscription(oven, session, emit)
    pump: asyncio.Task[None] | None = None
    try:
        await watch.start()
        assert watch.sub is not None
        assert dict.__len__(watch.sub._monitored_items) == watch.audited, "compacted"
        before = _requested(watch.sub._monitored_items)
        await watch.sub.recreate()  # what asyncua does to a subscription it finds gone quiet
        after = _requested(watch.sub._monitored_items)
        assert after == before and len(after) == len(session.nodes) + watch.audited
        pump = asyncio.create_task(watch.pump())
        value = float(await plant.read(OVEN, "temperature_sp")) + 1.5
        await plant.write(OVEN, "temperature_sp", value, actor="j.doe")
        async with asyncio.timeout(10):
            while not any(isinstance(e, Readings) and e.values.get("temperature_sp") is not None
                          and e.values["temperature_sp"].value == value for e in events):
                await asyncio.sleep(0.05)
    finally:
        if pump is not None:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
        await close_quietly(session.client)


@pytest.mark.integration
@pytest.mark.asyncio(loop_scope="module")
async def test_an_item_the_server_refuses_leaves_the_others_under_their_own_tags(
    plant: SimulatedPlant, oven: OpcuaControllerConfig
) -> None:
    """A node the server does not have: its item is refused, a hole among the handles; the
    items after it still report under their own tags."""
    missing = oven.tags[1].model_copy(
        update={"name": "missing_sp", "node": "nsu=urn:otwatch:sim:oven-01;s=Oven.Missing"})
    config = oven.model_copy(update={"tags": [oven.tags[0], missing, *oven.tags[1:]]})
    async with Recorder(OpcuaSource(config)) as rec:
        i, first = await rec.next(lambda e: isinstance(e, Readings))
        assert isinstance(first, Readings) and not first.complete, "the missing tag is unread"
        value = float(await plant.read(OVEN, "dwell_time_sp")) + 1.0
        await plant.write(OVEN, "dwell_time_sp", value, actor="j.doe")
        _, change = await rec.next(changes("dwell_time_sp", value), after=i + 1)
    assert isinstance(change, Readings) and change.actors == {"dwell_time_sp": "j.doe"}
    assert not any(isinstance(e, Readings) and "missing_sp" in e.values for e in rec.events)
