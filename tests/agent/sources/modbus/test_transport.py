"""The Modbus transport against the real simulated PLC: what a device's answers become.

A device that answers a request with a Modbus exception (illegal address, busy, a gateway
error) gives a `Refusal`: the source marks that request's tags unreadable with the reason,
reads the rest, logs the refusal once and asks again every scan; a device that is not there
is a connection error. The plant
checks after every test that nothing was written.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prometheus_client import REGISTRY

from agent.config import load_agent_config
from agent.errors import ControllerUnreachable
from agent.sources.modbus import ModbusControllerConfig, ModbusSource, ModbusTag, ModbusTransport
from agent.sources.modbus.transport import Refusal
from simulators.broker import free_port
from simulators.modbus_plc import ModbusPLC
from simulators.runtime import SimulatedPlant
from tests.agent.sources.factories import SAMPLE, modbus_controller, on_plant

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]
PRESS = "press-01"


def press(plant: SimulatedPlant, *extra_tags: dict[str, Any]) -> ModbusControllerConfig:
    """press-01 of the sample config on the simulated plant, with more tags if given."""
    config = load_agent_config(SAMPLE).controller(PRESS)
    assert isinstance(config, ModbusControllerConfig)
    extra = [ModbusTag.model_validate({"kind": "setpoint", **t}) for t in extra_tags]
    return on_plant(config, plant, tags=[*config.tags, *extra])


def exceptions(code: int) -> float:
    labels = {"controller": PRESS, "result": f"exception_{code}"}
    return REGISTRY.get_sample_value("otwatch_agent_reads_total", labels) or 0.0


async def test_a_refused_address_affects_its_tags_only_and_is_asked_every_scan(
    plant: SimulatedPlant, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14 item 3: an exception answer used to stop the source reading that request
    until the agent was restarted."""
    source = ModbusSource(press(plant, {"name": "far_sp", "address": 500}))
    (far,) = [r for r in source.plan if r.start == 500]  # the simulated PLC ends at 13
    caplog.set_level(logging.DEBUG, logger="agent.sources.modbus")
    await source.transport.connect()
    try:
        assert await source.transport.read(far) == Refusal(2)
        before = exceptions(2)
        scans = [await source.scan() for _ in range(3)]
    finally:
        source.transport.close()
    assert exceptions(2) == before + 3, "a refused request is asked again every scan"
    for values, bad in scans:
        assert bad == {"far_sp": "Modbus exception 2 (illegal data address)"}
        assert "far_sp" not in values and values["temperature_sp"].value == 180.0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert errors == [
        "Modbus controller press-01 refuses holding 500..500 (tags far_sp): Modbus exception 2 "
        "(illegal data address) (if it lasts, check their addresses in the config); 1 tags "
        "are unreadable, reported as a monitoring gap, and asked for again every scan"
    ], "logged once per outage"


async def test_a_busy_device_makes_its_tags_unreadable_until_it_answers_again(
    plant: SimulatedPlant, caplog: pytest.LogCaptureFixture
) -> None:
    plc = plant.plc(PRESS)
    assert isinstance(plc, ModbusPLC)
    source = ModbusSource(press(plant))
    caplog.set_level(logging.INFO, logger="agent.sources.modbus")
    await source.transport.connect()
    try:
        plc.faults.exception = "device_busy"
        assert await source.transport.read(source.plan[0]) == Refusal(6)
        values, bad = await source.scan()
        assert values == {} and set(bad) == {t.name for t in source.config.tags}
        plc.faults.exception = None
        values, bad = await source.scan()
    finally:
        source.transport.close()
    assert bad == {} and values["temperature_sp"].value == 180.0
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 2, "one line when it starts, one when it ends"
    assert "refuses holding 0..13 (tags temperature_sp, pressure_sp, recipe_no, lot_counter, "\
        "...): Modbus exception 6 (server device busy); coil 0..1" in logged[0]
    assert logged[1] == (
        "Modbus controller press-01 answers holding 0..13 (tags temperature_sp, pressure_sp, "
        "recipe_no, lot_counter, ...), coil 0..1 (tags auto_mode, maintenance_mode) again"
    )


async def test_an_exception_window_on_some_addresses_spares_the_others(
    plant: SimulatedPlant,
) -> None:
    plc = plant.plc(PRESS)
    assert isinstance(plc, ModbusPLC)
    source = ModbusSource(press(plant))
    await source.transport.connect()
    try:
        plc.exception_window("gateway_no_response", 60.0, addresses=range(0, 1))
        values, bad = await source.scan()
    finally:
        plc.faults.exception = None
        source.transport.close()
    holding = {t.name for t in source.config.tags if t.table == "holding"}
    assert set(bad) == holding
    assert set(bad.values()) == {
        "Modbus exception 11 (gateway target device failed to respond)"
    }
    assert set(values) == {"auto_mode", "maintenance_mode"}  # the coils' request is answered


async def test_no_device_is_a_connection_error() -> None:
    config = modbus_controller({"name": "a", "address": 0}, port=free_port(), timeout_s=1.0)
    transport = ModbusTransport(config)
    with pytest.raises(ControllerUnreachable, match="connection refused"):
        await transport.connect()
    transport.close()
    request = ModbusSource(config).plan[0]
    with pytest.raises(ControllerUnreachable, match="not connected"):
        await transport.read(request)
