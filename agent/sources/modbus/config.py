"""Modbus controller and tag settings (validated at start-up, never connecting).

Example (one controller of ``config/agent.yaml``)::

    - id: press-01
      protocol: modbus
      host: 10.0.0.7
      port: 502
      device_id: 1
      pacing_ms: 5                   # pause between two requests of a scan
      max_gap: 16                    # unused registers one request may span
      tags:
        - {name: temperature_sp, kind: setpoint, address: 0, data_type: float32}
        - {name: force_sp, kind: setpoint, address: 4, data_type: int32,
           word_order: little, scale: 0.01}
        - {name: auto_mode, kind: mode, table: coil, address: 0, data_type: bool}

A tag's shape is checked here (a coil holds a bool, a string needs ``length``, a bit needs
``bit``); that no two tags of one controller use the same register is checked by
`check_register_overlaps`, which `agent.config.AgentConfig` calls with the controller's index
so that the message names ``controllers[N]``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from agent.config_base import ControllerBase, TagBase

RegisterTable = Literal["holding", "input", "coil", "discrete"]
ModbusDataType = Literal[
    "int16", "uint16", "int32", "uint32", "float32", "float64", "string", "bool", "bit"
]

#: Registers each data type occupies (strings use `length`).
REGISTER_COUNT: dict[str, int] = {
    "int16": 1,
    "uint16": 1,
    "int32": 2,
    "uint32": 2,
    "float32": 2,
    "float64": 4,
    "bit": 1,
}


class ModbusTag(TagBase):
    table: RegisterTable = "holding"
    address: int = Field(ge=0, le=65535)
    data_type: ModbusDataType = "uint16"
    word_order: Literal["big", "little"] = "big"
    byte_order: Literal["big", "little"] = "big"
    scale: float = 1.0
    offset: float = 0.0
    #: Registers a string occupies (two characters each).
    length: int | None = Field(default=None, ge=1, le=125)
    #: Bit number for data_type `bit` (a bit inside a holding or input register).
    bit: int | None = Field(default=None, ge=0, le=15)

    @model_validator(mode="after")
    def _shape(self) -> ModbusTag:
        bit_tables = ("coil", "discrete")
        if self.table in bit_tables and self.data_type != "bool":
            raise ValueError(f"table {self.table} holds single bits: set data_type: bool")
        if self.table not in bit_tables and self.data_type == "bool":
            raise ValueError("data_type bool is for coils and discrete inputs; use bit + bit: N")
        if self.data_type == "string" and self.length is None:
            raise ValueError("data_type string needs `length` (registers, two characters each)")
        if self.data_type == "bit" and self.bit is None:
            raise ValueError("data_type bit needs `bit` (0-15)")
        return self

    @property
    def event_address(self) -> str:
        """``<table>:<address>``, e.g. ``holding:40``."""
        return f"{self.table}:{self.address}"

    @property
    def register_count(self) -> int:
        if self.data_type == "string":
            return self.length or 1
        return REGISTER_COUNT.get(self.data_type, 1)


class ModbusControllerConfig(ControllerBase):
    protocol: Literal["modbus"]
    host: str = "127.0.0.1"
    port: int = Field(default=502, ge=1, le=65535)
    device_id: int = Field(default=1, ge=0, le=255)
    #: Pause between two requests to one controller, so the agent never floods a PLC.
    pacing_ms: float = Field(default=0.0, ge=0.0)
    #: Largest gap of unused registers a read request spans instead of splitting in two.
    max_gap: int = Field(default=16, ge=0, le=124)
    tags: list[ModbusTag] = Field(min_length=1)

    @property
    def endpoint(self) -> str:
        return f"modbus://{self.host}:{self.port}/{self.device_id}"


def check_register_overlaps(ctl: ModbusControllerConfig, index: int) -> None:
    """Two tags on the same registers are a copy-paste error, except bits of one register."""
    taken: dict[tuple[str, int], str] = {}
    for tag in ctl.tags:
        for reg in range(tag.address, tag.address + tag.register_count):
            slot = (tag.table, reg) if tag.data_type != "bit" else (f"bit{tag.bit}", reg)
            other = taken.get(slot)
            if other is not None:
                raise ValueError(
                    f"controllers[{index}] ({ctl.id}): tags {other!r} and {tag.name!r} both use "
                    f"{tag.table} register {reg}; fix the address of one of them"
                )
            taken[slot] = tag.name
