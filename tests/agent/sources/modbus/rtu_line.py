"""A simulated Modbus line for the RTU tests: one simulated PLC answering as devices 1 and 2,
served on a serial line (a socat pty pair, RTU or ASCII) or as RTU framed over TCP, and the
agent's controller configs for the two devices on it.

Device 1 holds a tag in each table and of each data type; device 2 a speed setpoint and a
run coil. ``simulated_line`` checks, after the block, that the agent wrote nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from agent.sources.modbus import ModbusControllerConfig
from simulators.modbus_plc import ModbusPLC
from simulators.plant import ModbusController
from tests.support.serial_pair import serial_pair

#: The simulated PLC's tags (plant file form: stored = value * scale).
PLC_TAGS: list[dict[str, Any]] = [
    {"name": "temperature_sp", "address": 0, "type": "float32", "initial": 65.5},
    {"name": "pressure_sp", "address": 2, "type": "int16", "scale": 10, "initial": 12.5},
    {"name": "cycle_time_sp", "address": 3, "type": "uint32", "word_order": "little",
     "initial": 70000},
    {"name": "batch_size_sp", "address": 5, "type": "uint16", "initial": 500},
    {"name": "flow_pv", "table": "input", "address": 0, "type": "float32", "initial": 12.25,
     "kind": "context"},
    {"name": "level_pv", "table": "input", "address": 2, "type": "int32", "initial": -40000,
     "kind": "context"},
    {"name": "auto_mode", "table": "coil", "address": 0, "type": "bool", "initial": True,
     "kind": "mode"},
    {"name": "door_closed", "table": "discrete", "address": 0, "type": "bool",
     "initial": True, "kind": "context"},
    {"name": "alarm", "table": "discrete", "address": 3, "type": "bool", "initial": False,
     "kind": "context"},
    {"name": "speed_sp", "device_id": 2, "address": 0, "type": "uint16", "initial": 900},
    {"name": "running", "device_id": 2, "table": "coil", "address": 0, "type": "bool",
     "initial": True, "kind": "mode"},
]

#: The agent's tags for device 1: every table, every data type the PLC holds; two of them
#: by register number (40006 is holding address 5, 30003 input address 2).
DEVICE_1_TAGS: list[dict[str, Any]] = [
    {"name": "temperature_sp", "kind": "setpoint", "address": 0, "data_type": "float32"},
    {"name": "pressure_sp", "kind": "setpoint", "address": 2, "data_type": "int16",
     "scale": 0.1},
    {"name": "cycle_time_sp", "kind": "setpoint", "address": 3, "data_type": "uint32",
     "word_order": "little"},
    {"name": "batch_size_sp", "kind": "setpoint", "register": 40006, "data_type": "uint16"},
    {"name": "flow_pv", "kind": "measurement", "table": "input", "address": 0,
     "data_type": "float32"},
    {"name": "level_pv", "kind": "measurement", "register": 30003, "data_type": "int32"},
    {"name": "auto_mode", "kind": "mode", "table": "coil", "address": 0, "data_type": "bool"},
    {"name": "door_closed", "kind": "measurement", "table": "discrete", "address": 0,
     "data_type": "bool"},
    {"name": "alarm", "kind": "measurement", "table": "discrete", "address": 3,
     "data_type": "bool"},
]
DEVICE_1_VALUES = {
    "temperature_sp": 65.5, "pressure_sp": 12.5, "cycle_time_sp": 70000, "batch_size_sp": 500,
    "flow_pv": 12.25, "level_pv": -40000, "auto_mode": True, "door_closed": True,
    "alarm": False,
}
DEVICE_2_TAGS: list[dict[str, Any]] = [
    {"name": "speed_sp", "kind": "setpoint", "address": 0, "data_type": "uint16"},
    {"name": "running", "kind": "mode", "table": "coil", "address": 0, "data_type": "bool"},
]


#: The serial settings of the test lines, per mode (both ends use them).
SERIAL_SETTINGS: dict[str, dict[str, Any]] = {
    "rtu": {"mode": "rtu", "baudrate": 19200, "bytesize": 8, "parity": "N", "stopbits": 2},
    "ascii": {"mode": "ascii", "baudrate": 9600, "bytesize": 8, "parity": "N", "stopbits": 1},
}


def plc_config(line: dict[str, Any]) -> ModbusController:
    return ModbusController.model_validate({
        "id": "dryer-line", "protocol": "modbus", "device_id": 1, "tags": PLC_TAGS, **line,
    })


def device(line: dict[str, Any], device_id: int, **extra: Any) -> ModbusControllerConfig:
    """The agent's controller for one device on the line (``dryer-0<device_id>``)."""
    tags = DEVICE_1_TAGS if device_id == 1 else DEVICE_2_TAGS
    return ModbusControllerConfig.model_validate({
        "id": f"dryer-0{device_id}", "protocol": "modbus", "device_id": device_id,
        "poll_interval_s": 0.05, "timeout_s": 0.5, "tags": tags, **line, **extra,
    })


@contextlib.asynccontextmanager
async def simulated_line(
    directory: Path, transport: str = "serial", mode: str = "rtu"
) -> AsyncIterator[tuple[ModbusPLC, dict[str, Any]]]:
    """The simulated PLC on a line, and the keys of the agent's controller config that reach
    it (``transport`` and ``serial`` or ``host``/``port``). A serial line is 19200 8N2 in
    RTU mode and 9600 8N1 in ASCII mode (a Linux pty refuses parity: see serial_pair)."""
    with contextlib.ExitStack() as stack:
        if transport == "serial":
            plc_end, agent_end = stack.enter_context(serial_pair(directory))
            settings = SERIAL_SETTINGS[mode]
            plc_line: dict[str, Any] = {
                "transport": "serial", "serial": {"port": plc_end, **settings}}
            agent_line: dict[str, Any] = {
                "transport": "serial", "serial": {"port": agent_end, **settings}}
        else:
            plc_line = {"transport": "rtu_over_tcp"}
            agent_line = {"transport": "rtu_over_tcp", "host": "127.0.0.1"}
        plc = ModbusPLC(plc_config(plc_line))
        await plc.start()
        try:
            if transport != "serial":
                agent_line["port"] = plc.port
            yield plc, agent_line
            assert plc.foreign_writes == 0, "the agent wrote to the simulated PLC"
        finally:
            await plc.stop()
