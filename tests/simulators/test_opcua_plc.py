"""The simulated OPC UA PLC, read, written and subscribed to by an independent asyncua client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from simulators.opcua_plc import OpcUaPLC
from simulators.plant import OpcUaController, load_plant
from tests.simulators.conftest import PLANT_FILE

NSU = "urn:otwatch:sim:oven-01"


# One server for the module (building an OPC UA address space takes seconds); reset per test.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_oven() -> AsyncIterator[OpcUaPLC]:
    config = load_plant(PLANT_FILE).controller("oven-01")
    assert isinstance(config, OpcUaController)
    plc = OpcUaPLC(config)
    await plc.start()
    try:
        yield plc
    finally:
        await plc.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def oven(shared_oven: OpcUaPLC) -> OpcUaPLC:
    if not shared_oven.running:
        await shared_oven.start()
    await shared_oven.reset()
    return shared_oven


@pytest_asyncio.fixture(loop_scope="module")
async def client(oven: OpcUaPLC) -> AsyncIterator[Client]:
    c = Client(oven.endpoint, timeout=5)
    await c.connect()
    try:
        yield c
    finally:
        await c.disconnect()


async def node(client: Client, name: str) -> Node:
    """Resolve by namespace URI on every call, as a client must after a renumbering."""
    idx = await client.get_namespace_index(NSU)
    return client.get_node(f"ns={idx};s={name}")


class AuditEvents:
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.arrived = asyncio.Event()

    def event_notification(self, event: Any) -> None:
        self.events.append(event)
        self.arrived.set()


async def test_address_space_values_and_units(client: Client) -> None:
    objects = client.nodes.objects
    idx = await client.get_namespace_index(NSU)
    temp = await objects.get_child([f"{idx}:Oven", f"{idx}:Zone1", f"{idx}:TemperatureSP"])
    assert await temp.read_value() == 200.0
    eu = await (await temp.get_child(["0:EngineeringUnits"])).read_value()
    assert eu.DisplayName.Text == "degC" and eu.UnitId == 4408652
    rng = await (await temp.get_child(["0:EURange"])).read_value()
    assert (rng.Low, rng.High) == (0.0, 400.0)
    expected = {
        "Oven.Zone1.DwellTimeSP": 30.0,
        "Oven.Recipe.ActiveId": "R-100",
        "Oven.Recipe.Version": 1,
        "Oven.Lot.Id": "LOT-0001",
        "Oven.Mode": "AUTO",
    }
    for name, value in expected.items():
        assert await (await node(client, name)).read_value() == value
    checksum = await (await node(client, "Oven.Program.Checksum")).read_value()
    assert int(checksum, 16) > 0


async def test_scenario_write_raises_an_audit_event_and_is_not_counted(
    oven: OpcUaPLC, client: Client
) -> None:
    handler = AuditEvents()
    sub = await client.create_subscription(20, handler)
    await sub.subscribe_events(client.nodes.server, ObjectIds.AuditWriteUpdateEventType)
    await oven.write("temperature_sp", 230.0, actor="unknown")
    await asyncio.wait_for(handler.arrived.wait(), timeout=10)
    (event,) = handler.events
    assert event.ClientUserId == "unknown"
    assert (event.OldValue, event.NewValue) == (200.0, 230.0)
    assert event.SourceNode == (await node(client, "Oven.Zone1.TemperatureSP")).nodeid
    assert await (await node(client, "Oven.Zone1.TemperatureSP")).read_value() == 230.0
    assert oven.foreign_writes == 0
    await sub.delete()


async def test_client_writes_are_counted(oven: OpcUaPLC, client: Client) -> None:
    temp = await node(client, "Oven.Zone1.TemperatureSP")
    await temp.write_value(ua.Variant(210.0, ua.VariantType.Double))
    mode = await node(client, "Oven.Mode")
    await mode.write_value(ua.Variant("MANUAL", ua.VariantType.String))
    assert oven.foreign_writes == 2
    assert await oven.read("temperature_sp") == 210.0
    await temp.read_value()
    assert oven.foreign_writes == 2  # reads are not writes


async def test_restart_renumbers_the_namespace_and_keeps_values(
    oven: OpcUaPLC, client: Client
) -> None:
    before = await client.get_namespace_index(NSU)
    await oven.write("program_checksum", "0badc0de", actor="eng.k")
    await oven.restart()
    async with Client(oven.endpoint, timeout=5) as again:
        after = await again.get_namespace_index(NSU)
        assert after == before + 1
        checksum = again.get_node(f"ns={after};s=Oven.Program.Checksum")
        assert await checksum.read_value() == "0badc0de"
        stale = again.get_node(f"ns={before};s=Oven.Program.Checksum")
        with pytest.raises(UaStatusCodeError):
            await stale.read_value()


async def test_dropped_connections_end_the_session(oven: OpcUaPLC, client: Client) -> None:
    assert oven.drop_connections() == 1
    with pytest.raises((ConnectionError, UaError, asyncio.TimeoutError)):
        await (await node(client, "Oven.Mode")).read_value()


async def test_a_change_made_while_stopped_is_served_after_start(oven: OpcUaPLC) -> None:
    await oven.stop()
    oven.set_stored("mode", "MANUAL")
    await oven.start()
    async with Client(oven.endpoint, timeout=5) as client:
        assert await (await node(client, "Oven.Mode")).read_value() == "MANUAL"
