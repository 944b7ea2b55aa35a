"""The simulated Modbus PLC on RTU: a serial line (one end of a socat pty pair started by the
test) and RTU framed over TCP, read and written by an independent pymodbus client.

Every table answers, writes over the wire are counted, a device id the plant lacks stays
silent as on a real line, and so does a device switched off (``faults.silent_devices``).
Skipped, saying why, without socat.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.client.base import ModbusBaseClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerType

from simulators.errors import SimulatorError
from simulators.modbus_plc import ModbusPLC
from simulators.plant import ModbusController
from tests.support.serial_pair import serial_pair

pytestmark = pytest.mark.integration

TAGS: list[dict[str, Any]] = [
    {"name": "speed_sp", "address": 0, "type": "uint16", "initial": 1200},
    {"name": "flow_pv", "table": "input", "address": 1, "type": "int16", "scale": 10,
     "initial": -2.5, "kind": "context"},
    {"name": "auto_mode", "table": "coil", "address": 2, "type": "bool", "initial": True},
    {"name": "door_closed", "table": "discrete", "address": 3, "type": "bool",
     "initial": True, "kind": "context"},
    {"name": "fan_sp", "device_id": 2, "address": 0, "type": "uint16", "initial": 40},
]


def controller(**line: Any) -> ModbusController:
    return ModbusController.model_validate(
        {"id": "rtu-plc", "protocol": "modbus", "device_id": 1, "tags": TAGS, **line}
    )


@asynccontextmanager
async def rtu_plc(
    tmp_path: Path, transport: str, mode: str = "rtu"
) -> AsyncIterator[tuple[ModbusPLC, ModbusBaseClient]]:
    """The PLC on a serial line (or RTU over TCP) and a client at the other end."""
    framer = FramerType.ASCII if mode == "ascii" else FramerType.RTU
    if transport == "serial":
        with serial_pair(tmp_path) as (plc_end, client_end):
            line = {"port": plc_end, "mode": mode, "parity": "N"}
            plc = ModbusPLC(controller(transport="serial", serial=line))
            await plc.start()
            client: ModbusBaseClient = AsyncModbusSerialClient(
                client_end, framer=framer, baudrate=19200, timeout=0.3, retries=0
            )
            try:
                assert await client.connect()
                yield plc, client
            finally:
                client.close()
                await plc.stop()
        return
    plc = ModbusPLC(controller(transport="rtu_over_tcp"))
    await plc.start()
    client = AsyncModbusTcpClient("127.0.0.1", port=plc.port, framer=framer, timeout=0.3,
                                  retries=0)
    try:
        assert await client.connect()
        yield plc, client
    finally:
        client.close()
        await plc.stop()


LINES = [
    pytest.param("serial", "rtu", id="serial-rtu"),
    pytest.param("serial", "ascii", id="serial-ascii"),
    pytest.param("rtu_over_tcp", "rtu", id="rtu-over-tcp"),
]


@pytest.mark.parametrize(("transport", "mode"), LINES)
async def test_every_table_answers(tmp_path: Path, transport: str, mode: str) -> None:
    async with rtu_plc(tmp_path, transport, mode) as (plc, client):
        assert (await client.read_holding_registers(0, count=1, device_id=1)).registers == [1200]
        assert (await client.read_input_registers(1, count=1, device_id=1)).registers == [
            0x10000 - 25
        ]
        assert (await client.read_coils(2, count=1, device_id=1)).bits[0] is True
        assert (await client.read_discrete_inputs(3, count=1, device_id=1)).bits[0] is True
        assert (await client.read_holding_registers(0, count=1, device_id=2)).registers == [40]
        await plc.write("door_closed", False)
        await plc.write("flow_pv", 1.5)
        assert (await client.read_discrete_inputs(3, count=1, device_id=1)).bits[0] is False
        assert (await client.read_input_registers(1, count=1, device_id=1)).registers == [15]
        assert plc.foreign_writes == 0


async def test_writes_over_the_line_are_counted(tmp_path: Path) -> None:
    async with rtu_plc(tmp_path, "serial") as (plc, client):
        await client.write_register(0, 1300, device_id=1)
        await client.write_coil(2, False, device_id=1)
        assert plc.foreign_writes == 2
        assert await plc.read("speed_sp") == 1300


@pytest.mark.parametrize(("transport", "mode"), LINES[::2])
async def test_absent_and_silent_devices_do_not_answer(
    tmp_path: Path, transport: str, mode: str
) -> None:
    async with rtu_plc(tmp_path, transport, mode) as (plc, client):
        with pytest.raises(ModbusIOException, match="No response"):
            await client.read_holding_registers(0, count=1, device_id=9)  # not on the line
        plc.faults.silent_devices = frozenset({2})
        with pytest.raises(ModbusIOException, match="No response"):
            await client.read_holding_registers(0, count=1, device_id=2)
        assert (await client.read_holding_registers(0, count=1, device_id=1)).registers == [1200]
        plc.faults.silent_devices = frozenset()
        assert (await client.read_holding_registers(0, count=1, device_id=2)).registers == [40]


async def test_a_restart_on_the_serial_line_keeps_the_values(tmp_path: Path) -> None:
    async with rtu_plc(tmp_path, "serial") as (plc, client):
        await plc.write("speed_sp", 1250)
        await plc.write("door_closed", False)
        await plc.restart()
        assert (await client.read_holding_registers(0, count=1, device_id=1)).registers == [1250]
        assert (await client.read_discrete_inputs(3, count=1, device_id=1)).bits[0] is False
        assert plc.endpoint == plc.config.serial.port  # type: ignore[union-attr]


async def test_a_missing_serial_port_is_named(tmp_path: Path) -> None:
    port = str(tmp_path / "no-such-tty")
    plc = ModbusPLC(controller(transport="serial", serial={"port": port}))
    with pytest.raises(SimulatorError, match=f"cannot open serial port {port}"):
        await plc.start()
    assert not plc.running


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ({"transport": "serial"}, "transport serial and `serial: {port: ...}` go together"),
        ({"serial": {"port": "/dev/ttyS0"}}, "go together"),
        ({"transport": "rtu_over_tcp", "device_id": 0}, "device id 0 is the broadcast address"),
    ],
)
def test_plant_line_checks(line: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        controller(**line)
