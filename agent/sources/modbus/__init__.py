"""Modbus TCP: the agent's polling source, and everything it knows about Modbus.

    config.py    ModbusControllerConfig, ModbusTag and their checks (validated at start-up)
    plan.py      plan_reads: tags -> as few read requests as the size limits allow (pure)
    source.py    ModbusSource: polls one controller with its compiled plan, read only

The source loads pymodbus; it is imported on first use, so that loading a config
(``otwatch-agent check``) never loads the protocol library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from agent.sources.modbus.config import ModbusControllerConfig, ModbusTag
from agent.sources.modbus.plan import ReadRequest, compile_request, decode, plan_reads

if TYPE_CHECKING:
    from agent.sources.modbus.source import ModbusSource

__all__ = [
    "ModbusControllerConfig",
    "ModbusSource",
    "ModbusTag",
    "ReadRequest",
    "compile_request",
    "decode",
    "plan_reads",
]

_LAZY = {"ModbusSource": "agent.sources.modbus.source"}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
