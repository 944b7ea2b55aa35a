"""The Modbus transport against the real simulated PLC: what a device's answers become.

A device that refuses a request's addresses gives a `TagConfigError` naming the tags and the
fix, and the source logs it once and stops sending that request; a busy device makes a scan
incomplete and is asked again; a device that is not there is a connection error. The plant
checks after every test that nothing was written.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prometheus_client import REGISTRY

from agent.config import load_agent_config
from agent.errors import ControllerUnreachable, TagConfigError
from agent.sources.modbus import ModbusControllerConfig, ModbusSource, ModbusTag, ModbusTransport
from simulators.broker import free_port
from simulators.modbus_plc import ModbusPLC
from simulators.runtime import SimulatedPlant
from tests.agent.sources.factories import SAMPLE, modbus_controller, on_plant

pytestmark = pytest.mark.asyncio(loop_scope="module")
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


async def test_a_refused_address_names_the_tags_and_is_asked_once(
    plant: SimulatedPlant, caplog: pytest.LogCaptureFixture
) -> None:
    source = ModbusSource(press(plant, {"name": "far_sp", "address": 500}))
    (far,) = [r for r in source.plan if r.start == 500]  # the simulated PLC ends at 13
    caplog.set_level(logging.ERROR, logger="agent.sources.modbus")
    await source.transport.connect()
    try:
        with pytest.raises(TagConfigError, match=(
            r"controller press-01 refuses holding 500\.\.500 \(tags far_sp\): "
            "fix their addresses in the config"
        )):
            await source.transport.read(far)
        before = exceptions(2)
        scans = [await source.scan() for _ in range(3)]
    finally:
        source.transport.close()
    assert exceptions(2) == before + 1, "a refused request is not sent again"
    assert [complete for _, complete in scans] == [False, False, False]
    values = scans[-1][0]
    assert "far_sp" not in values and values["temperature_sp"].value == 180.0
    logged = [r for r in caplog.records if "fix their addresses" in r.getMessage()]
    assert len(logged) == 1


async def test_a_busy_device_makes_the_scan_incomplete_and_is_asked_again(
    plant: SimulatedPlant,
) -> None:
    plc = plant.plc(PRESS)
    assert isinstance(plc, ModbusPLC)
    source = ModbusSource(press(plant))
    await source.transport.connect()
    try:
        plc.faults.exception = "device_busy"
        assert await source.transport.read(source.plan[0]) is None
        assert await source.scan() == ({}, False)
        plc.faults.exception = None
        values, complete = await source.scan()
    finally:
        source.transport.close()
    assert complete and values["temperature_sp"].value == 180.0


async def test_no_device_is_a_connection_error() -> None:
    config = modbus_controller({"name": "a", "address": 0}, port=free_port(), timeout_s=1.0)
    transport = ModbusTransport(config)
    with pytest.raises(ControllerUnreachable, match="connection refused"):
        await transport.connect()
    transport.close()
    request = ModbusSource(config).plan[0]
    with pytest.raises(ControllerUnreachable, match="not connected"):
        await transport.read(request)
