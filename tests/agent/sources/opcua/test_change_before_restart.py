"""A change made just before the OPC UA server restarts (a program download) reaches the source.

The flaky ``program-download`` scenario came down to this: the checksum change is written, the
server restarts 0.17 s later (at speed 3), and with a 250 ms publishing interval the change was
often still queued in the server when it stopped; asyncua's ``Server.stop`` dropped it. The
scenario then overwrites the value right after the slow restart, so no read after the reconnect
could see it either. The simulated PLC now sends what its subscriptions hold before it stops;
here the restart follows the write at once (no settle at all), so without that every run but a
rare lucky one loses the change.
"""

from __future__ import annotations

import asyncio

import pytest

from agent.config import OpcuaControllerConfig
from agent.sources.base import Connected, Disconnected, Readings
from agent.sources.opcua import OpcuaSource
from simulators.opcua_plc import OpcUaPLC
from simulators.runtime import SimulatedPlant
from tests.agent.sources.opcua.conftest import OVEN
from tests.agent.sources.running import Recorder, changes, is_complete

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


def slow_publishing(oven: OpcuaControllerConfig) -> OpcuaControllerConfig:
    """The sample agent config's intervals: a change waits up to 250 ms for its publish."""
    return oven.model_copy(update={"publishing_interval_ms": 250.0, "sampling_interval_ms": 100.0})


@pytest.mark.parametrize("attempt", range(3))
async def test_a_change_right_before_a_restart_is_reported_with_its_actor(
    plant: SimulatedPlant, oven: OpcuaControllerConfig, attempt: int
) -> None:
    plc = plant.plc(OVEN)
    assert isinstance(plc, OpcUaPLC)
    checksum = f"c0ffee{attempt:010d}"
    async with Recorder(OpcuaSource(slow_publishing(oven))) as rec:
        i, first = await rec.next(lambda e: isinstance(e, Connected))
        i, _ = await rec.next(is_complete, after=i)
        await plant.write(OVEN, "program_checksum", checksum, actor="eng.k")
        await plc.restart(renumber=True)  # at once: the change is still queued in the server
        _, change = await rec.next(changes("program_checksum", checksum), after=i)
        gone, _ = await rec.next(lambda e: isinstance(e, Disconnected), after=i)
        j, second = await rec.next(lambda e: isinstance(e, Connected), after=gone)
        _, full = await rec.next(is_complete, after=j)
    assert rec.events.index(change) < gone, "reported by the session that saw it"
    assert isinstance(change, Readings) and change.actors == {"program_checksum": "eng.k"}
    assert isinstance(first, Connected) and isinstance(second, Connected)
    assert second.session != first.session
    assert isinstance(full, Readings) and full.values["program_checksum"].value == checksum


async def test_a_stopped_server_keeps_no_subscription_running(
    plant: SimulatedPlant, oven: OpcuaControllerConfig
) -> None:
    plc = plant.plc(OVEN)
    assert isinstance(plc, OpcUaPLC)
    async with Recorder(OpcuaSource(oven)) as rec:
        await rec.next(is_complete)
        server = plc._server
        assert server is not None
        service = server.iserver.subscription_service
        assert service.subscriptions, "the source subscribes"
        await plc.restart()
    assert not service.subscriptions  # the old server's publishing loops ended with it


async def test_a_stopping_plc_accepts_no_new_connection(plant: SimulatedPlant) -> None:
    """A client accepted while asyncua's Server.stop closed the others survived the stop, and
    on Python 3.11 the stop then waited for it for ever (the agent reconnecting hit this)."""
    plc = plant.plc(OVEN)
    assert isinstance(plc, OpcUaPLC)
    stopping = asyncio.create_task(plc.stop())
    await asyncio.sleep(0)  # stop() has begun
    try:
        with pytest.raises(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", plc.port)
            writer.close()
    finally:
        await asyncio.wait_for(stopping, 10)
        await plc.start()
