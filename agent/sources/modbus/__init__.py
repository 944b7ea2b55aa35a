"""Modbus (TCP, RTU over TCP, RTU/ASCII on a serial line): the agent's polling source.

    addresses.py  protocol addresses (0-based) and register numbers (40001) (pure)
    config.py     ModbusControllerConfig, ModbusTag, ModbusSerialLine and their checks
                  (validated at start-up); describe_connection for ``otwatch-agent check``
    plan.py       plan_reads: tags -> as few read requests as the size limits allow (pure);
                  describe_plan: the plan as ``otwatch-agent check`` prints it
    decode.py     registers -> tag values: the reference `decode`, and `compile_request`,
                  the per-request decoder a scan runs (pure)
    responses.py  register answers decoded in one struct call (the lines' clients use them)
    exchange.py   ask: one read request and its answer on a line's client, without
                  pymodbus's per-request lock, retry loop and wait_for (the line has its own)
    line.py       ModbusLine: the one owner of a connection (pymodbus client, lock), shared
                  by the devices on one serial port or gateway; ModbusLines hands them out
    transport.py  ModbusTransport: one device on its line (unit id, pacing, reconnect
                  backoff, answers translated); reads only
    source.py     ModbusSource: polls one controller with its compiled plan (`Source`)

The answers, the exchange, the line, the transport and the source load pymodbus; they are
imported on first use, so that loading a config (``otwatch-agent check``) never loads the
protocol library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from agent.sources.modbus.config import (
    ModbusControllerConfig,
    ModbusSerialLine,
    ModbusTag,
    describe_connection,
)
from agent.sources.modbus.decode import compile_request, decode
from agent.sources.modbus.plan import ReadRequest, describe_plan, plan_reads

if TYPE_CHECKING:
    from agent.sources.modbus.line import ModbusLine, ModbusLines
    from agent.sources.modbus.source import ModbusSource
    from agent.sources.modbus.transport import ModbusTransport

__all__ = [
    "ModbusControllerConfig",
    "ModbusLine",
    "ModbusLines",
    "ModbusSerialLine",
    "ModbusSource",
    "ModbusTag",
    "ModbusTransport",
    "ReadRequest",
    "compile_request",
    "decode",
    "describe_connection",
    "describe_plan",
    "plan_reads",
]

_LAZY = {
    "ModbusLine": "agent.sources.modbus.line",
    "ModbusLines": "agent.sources.modbus.line",
    "ModbusSource": "agent.sources.modbus.source",
    "ModbusTransport": "agent.sources.modbus.transport",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
