"""Modbus TCP: the agent's polling source, and everything it knows about Modbus.

    config.py     ModbusControllerConfig, ModbusTag and their checks (validated at start-up)
    plan.py       plan_reads: tags -> as few read requests as the size limits allow (pure);
                  describe_plan: the plan as ``otwatch-agent check`` prints it
    decode.py     registers -> tag values: the reference `decode`, and `compile_request`,
                  the per-request decoder a scan runs (pure)
    transport.py  ModbusTransport: the one owner of a device's connection (pymodbus client,
                  lock, pacing, reconnect backoff); reads only
    source.py     ModbusSource: polls one controller with its compiled plan (`Source`)

The transport and the source load pymodbus; they are imported on first use, so that loading
a config (``otwatch-agent check``) never loads the protocol library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from agent.sources.modbus.config import ModbusControllerConfig, ModbusTag
from agent.sources.modbus.decode import compile_request, decode
from agent.sources.modbus.plan import ReadRequest, describe_plan, plan_reads

if TYPE_CHECKING:
    from agent.sources.modbus.source import ModbusSource
    from agent.sources.modbus.transport import ModbusTransport

__all__ = [
    "ModbusControllerConfig",
    "ModbusSource",
    "ModbusTag",
    "ModbusTransport",
    "ReadRequest",
    "compile_request",
    "decode",
    "describe_plan",
    "plan_reads",
]

_LAZY = {
    "ModbusSource": "agent.sources.modbus.source",
    "ModbusTransport": "agent.sources.modbus.transport",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
