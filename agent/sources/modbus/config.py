"""Modbus controller and tag settings (validated at start-up, never connecting).

Example (controllers of ``config/agent.yaml``)::

    - id: press-01
      protocol: modbus
      host: 10.0.0.7                 # transport: tcp (the default), Modbus TCP
      port: 502
      device_id: 1
      pacing_ms: 5                   # pause between two requests of a scan
      max_gap: 16                    # unused registers one request may span
      tags:
        - {name: temperature_sp, kind: setpoint, address: 0, data_type: float32}
        - {name: force_sp, kind: setpoint, register: 40005, data_type: int32,
           word_order: little, scale: 0.01}              # register 40005 = holding address 4
        - {name: auto_mode, kind: mode, table: coil, address: 0, data_type: bool}
    - id: dryer-01
      protocol: modbus
      transport: serial              # RTU on an RS-485 line; rtu_over_tcp: a serial gateway
      serial: {port: /dev/ttyUSB0, baudrate: 19200, bytesize: 8, parity: E, stopbits: 1}
      device_id: 3                   # the device's unit (slave) id on the line
      tags: [...]

Addresses (`agent.sources.modbus.addresses`): ``address`` is the 0-based protocol address;
``register`` takes the 1-based register number a manual prints (40001 = holding address 0).
An ``address`` that looks like a register number is refused unless the controller sets
``high_protocol_addresses: true``.

A tag's shape is checked here (a coil holds a bool, a string needs ``length``, a bit needs
``bit``); that no two tags of one controller use the same register is checked by
`check_register_overlaps`, and that the controllers on one line agree by
`check_shared_lines`, which `agent.config.AgentConfig` calls with the controllers' indexes
so that the messages name ``controllers[N]``. Controllers with one serial port (or one RTU
over TCP gateway) share one connection at run time (`agent.sources.modbus.line`).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, BaseModel, Field, field_validator, model_validator

from agent.config_base import ControllerBase, TagBase, TagSettings, _Strict
from agent.sources.modbus.addresses import from_register_number, register_number_hint

RegisterTable = Literal["holding", "input", "coil", "discrete"]
ModbusDataType = Literal[
    "int16", "uint16", "int32", "uint32", "float32", "float64", "string", "bool", "bit"
]
#: How requests reach the device: Modbus TCP, RTU frames through a TCP serial gateway
#: (a serial device server in raw/transparent mode), or a serial line of the agent's host.
ModbusTransportKind = Literal["tcp", "rtu_over_tcp", "serial"]

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

#: Unit ids a device on a serial line may have: 0 is the broadcast address (no device
#: answers it) and 248-255 are reserved by the Modbus serial line specification.
SERIAL_UNIT_IDS = range(1, 248)
_PARITY_WORDS = {"none": "N", "even": "E", "odd": "O"}
_DEFAULT_HOST, _DEFAULT_PORT = "127.0.0.1", 502


class ModbusTagSettings(TagSettings):
    #: Modbus table: holding or input registers, coils or discrete inputs.
    table: RegisterTable = "holding"
    #: The 0-based protocol address in ``table`` (what travels in the request).
    address: int = Field(ge=0, le=65535)
    #: Or ``register:``, the 1-based register number a manual prints (40001: holding
    #: address 0); it sets ``table`` and ``address`` (`agent.sources.modbus.addresses`).
    #: (``register`` is the key; pydantic models already have a `register` method. A
    #: dumped config says ``register_number``, and loads again.)
    register_number: int | None = Field(
        default=None, validation_alias=AliasChoices("register", "register_number")
    )
    #: How the registers are decoded.
    data_type: ModbusDataType = "uint16"
    #: Order of the 16-bit words in a 32/64-bit value (``little``: low word first).
    word_order: Literal["big", "little"] = "big"
    #: Order of the two bytes in each register.
    byte_order: Literal["big", "little"] = "big"
    #: The decoded value is multiplied by this ...
    scale: float = 1.0
    #: ... and this is added.
    offset: float = 0.0
    #: Registers a string occupies (two characters each).
    length: int | None = Field(default=None, ge=1, le=125)
    #: Bit number for data_type `bit` (a bit inside a holding or input register).
    bit: int | None = Field(default=None, ge=0, le=15)

    @model_validator(mode="before")
    @classmethod
    def _register_number(cls, data: Any) -> Any:
        """``register: 40001`` becomes ``table: holding, address: 0``; a six-digit register
        number given as ``address`` is named as such."""
        if not isinstance(data, dict):
            return data
        number = data.get("register", data.get("register_number"))
        address = data.get("address")
        if number is None:
            _six_digit_address(address)
            return data
        if not isinstance(number, int) or isinstance(number, bool):
            return data  # the field's own check says what is wrong
        table, from_number = from_register_number(number)
        if address is not None and address != from_number:
            raise ValueError(
                f"give `address` (0-based protocol address) or `register` (register number "
                f"such as 40001), not both; register {number} is {table} address {from_number}"
            )
        given = data.get("table")
        if given is not None and given != table:
            raise ValueError(
                f"register {number} is a {table} register number, but table is {given!r}; "
                f"fix: remove `table` (the register number names it), or correct the number"
            )
        return {**data, "table": table, "address": from_number}

    @model_validator(mode="after")
    def _shape(self) -> ModbusTagSettings:
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


class ModbusTag(TagBase):
    """A validated Modbus tag (`ModbusTagSettings`), kept as a row (`agent.config_rows`)."""

    __settings__: ClassVar[type[BaseModel]] = ModbusTagSettings
    __slots__ = (
        "address",
        "bit",
        "byte_order",
        "data_type",
        "length",
        "offset",
        "register_number",
        "scale",
        "table",
        "word_order",
    )
    table: RegisterTable
    address: int
    register_number: int | None
    data_type: ModbusDataType
    word_order: Literal["big", "little"]
    byte_order: Literal["big", "little"]
    scale: float
    offset: float
    length: int | None
    bit: int | None

    @property
    def event_address(self) -> str:
        """``<table>:<address>``, e.g. ``holding:40``."""
        return f"{self.table}:{self.address}"

    @property
    def register_count(self) -> int:
        if self.data_type == "string":
            return self.length or 1
        return REGISTER_COUNT.get(self.data_type, 1)


def _six_digit_address(address: object) -> None:
    """An address past 65535 that is a six-digit register number: say so, and the fix."""
    if not isinstance(address, int) or isinstance(address, bool) or address <= 65535:
        return
    try:
        table, protocol = from_register_number(address)
    except ValueError:
        return  # the field's own range check reports it
    raise ValueError(
        f"address {address} is more than 65535: it looks like the register number of {table} "
        f"address {protocol}; fix: write `register: {address}`, or `address: {protocol}`"
    )


class ModbusSerialLine(_Strict):
    """A serial line's settings, as set on its devices (every device on a line shares them).

    The defaults are those of the Modbus over Serial Line specification (19200 baud, 8 data
    bits, even parity, 1 stop bit, RTU); many devices leave the factory set to 8N1 instead.
    """

    #: The serial device: /dev/ttyUSB0, or better a stable name from /dev/serial/by-id/.
    port: str = Field(min_length=1)
    #: rtu (binary frames, the usual) or ascii (hex text frames, ``:`` ... CR LF).
    mode: Literal["rtu", "ascii"] = "rtu"
    #: Line speed in bit/s.
    baudrate: int = Field(default=19200, ge=50, le=4_000_000)
    #: Data bits per character.
    bytesize: Literal[7, 8] = 8
    #: N (none), E (even) or O (odd); ``none``/``even``/``odd`` are accepted too.
    parity: Literal["N", "E", "O"] = "E"
    #: Stop bits per character.
    stopbits: Literal[1, 2] = 1

    @field_validator("parity", mode="before")
    @classmethod
    def _parity_word(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _PARITY_WORDS.get(value.lower(), value.upper())
        return value

    @model_validator(mode="after")
    def _rtu_is_eight_bits(self) -> ModbusSerialLine:
        if self.mode == "rtu" and self.bytesize != 8:
            raise ValueError(
                "mode rtu sends 8 data bits; fix: bytesize: 8 (7 data bits are for mode: ascii)"
            )
        return self

    @property
    def character_format(self) -> str:
        """``19200 8E1 RTU``."""
        return f"{self.baudrate} {self.bytesize}{self.parity}{self.stopbits} {self.mode.upper()}"


class ModbusControllerConfig(ControllerBase):
    #: ``modbus``.
    protocol: Literal["modbus"]
    #: ``tcp`` (Modbus TCP), ``rtu_over_tcp`` (RTU frames to a TCP serial gateway) or ``serial``.
    transport: ModbusTransportKind = "tcp"
    #: tcp and rtu_over_tcp: the device's (or the serial gateway's) address.
    host: str = _DEFAULT_HOST
    #: TCP port of the device or gateway.
    port: int = Field(default=_DEFAULT_PORT, ge=1, le=65535)
    #: serial: the line's port and settings.
    serial: ModbusSerialLine | None = None
    #: The unit id: Modbus TCP 0-255 (often ignored by the device); on a serial line, or
    #: behind a gateway, the device's address on the line, 1-247.
    device_id: int = Field(default=1, ge=0, le=255)
    #: Pause between two requests to one controller, so the agent never floods a PLC. On a
    #: serial line the line stays quiet for it (another device's request waits too).
    pacing_ms: float = Field(default=0.0, ge=0.0)
    #: Largest gap of unused registers a read request spans instead of splitting in two.
    max_gap: int = Field(default=16, ge=0, le=124)
    #: True: addresses from 10001 on are this device's real protocol addresses (some
    #: inverters and meters map their registers there), not register numbers written
    #: by mistake; they are read as written.
    high_protocol_addresses: bool = False
    #: The controller's registers and coils to read (at least one).
    tags: list[ModbusTag] = Field(min_length=1)

    @model_validator(mode="after")
    def _transport_settings(self) -> ModbusControllerConfig:
        given = self.model_fields_set
        if self.transport == "serial":
            if self.serial is None:
                raise ValueError(
                    "transport serial needs `serial:` with at least its port; fix: add "
                    "serial: {port: /dev/ttyUSB0} (and the line's baudrate, parity, ...)"
                )
            # Set to other than the defaults (a dumped config carries the defaults along).
            if ("host" in given and self.host != _DEFAULT_HOST) or (
                "port" in given and self.port != _DEFAULT_PORT
            ):
                raise ValueError(
                    "host and port are for transport tcp and rtu_over_tcp; a serial "
                    "controller is reached through serial.port; fix: remove host/port"
                )
        elif self.serial is not None:
            raise ValueError(
                f"`serial:` settings are for transport serial, but transport is "
                f"{self.transport}; fix: set transport: serial, or remove serial"
            )
        if self.transport != "tcp" and self.device_id not in SERIAL_UNIT_IDS:
            raise ValueError(
                f"device_id {self.device_id} cannot be a device on a serial line (0 is the "
                "broadcast address, which no device answers; 248-255 are reserved); fix: "
                "set device_id to the device's address, 1-247"
            )
        return self

    @model_validator(mode="after")
    def _no_register_numbers(self) -> ModbusControllerConfig:
        if self.high_protocol_addresses:
            return self
        for index, tag in enumerate(self.tags):
            hint = register_number_hint(tag.address) if tag.register_number is None else None
            if hint is None:
                continue
            table, protocol = hint
            article = "an" if table[0] in "aeiou" else "a"
            raise ValueError(
                f"tags[{index}] ({tag.name}): address {tag.address} looks like {article} {table} "
                f"register number (counted from 1), but `address` is the 0-based protocol "
                f"address; fix: write `register: {tag.address}` (the agent then reads "
                f"{table} address {protocol}) or `address: {protocol}`; if {tag.address} "
                "really is the device's protocol address, set high_protocol_addresses: "
                "true on the controller"
            )
        return self

    @property
    def endpoint(self) -> str:
        """``modbus://host:port/unit`` (TCP), ``modbus+rtu://host:port/unit`` (RTU over
        TCP), ``modbus+rtu:/dev/ttyUSB0/unit`` (serial; ``modbus+ascii:`` in ASCII mode)."""
        if self.serial is not None:
            return f"modbus+{self.serial.mode}:{self.serial.port}/{self.device_id}"
        scheme = "modbus+rtu" if self.transport == "rtu_over_tcp" else "modbus"
        return f"{scheme}://{self.host}:{self.port}/{self.device_id}"

    @property
    def line_key(self) -> tuple[str, ...]:
        """What one connection serves: a serial port, an RTU over TCP gateway's host:port,
        or (Modbus TCP) this controller alone."""
        if self.serial is not None:
            return ("serial", posixpath.normpath(self.serial.port))
        if self.transport == "rtu_over_tcp":
            return ("rtu_over_tcp", self.host.lower(), str(self.port))
        return ("tcp", self.id)

    @property
    def line_name(self) -> str:
        """The line in words: ``serial port /dev/ttyUSB0``, ``RTU over TCP gateway h:p``."""
        if self.serial is not None:
            return f"serial port {self.serial.port}"
        if self.transport == "rtu_over_tcp":
            return f"RTU over TCP gateway {self.host}:{self.port}"
        return f"Modbus TCP device {self.host}:{self.port}"

    def line_settings(self) -> dict[str, object]:
        """The settings every controller on one line must share (one connection has them)."""
        settings: dict[str, object] = {"timeout_s": self.timeout_s}
        if self.serial is not None:
            settings.update(self.serial.model_dump(exclude={"port"}))
        return settings


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


def check_shared_lines(controllers: Sequence[tuple[int, ModbusControllerConfig]]) -> None:
    """Controllers on one serial port (or one RTU over TCP gateway) are devices on one line:
    one connection serves them, so they share its settings and each has its own unit id.
    ``controllers``: (index in the file, controller)."""
    first: dict[tuple[str, ...], tuple[int, ModbusControllerConfig]] = {}
    units: dict[tuple[tuple[str, ...], int], tuple[int, ModbusControllerConfig]] = {}
    framing: dict[tuple[str, int], tuple[int, ModbusControllerConfig]] = {}
    for index, ctl in controllers:
        if ctl.transport != "serial":
            _one_framing_per_endpoint(framing, index, ctl)
        if ctl.line_key[0] == "tcp":
            continue
        where = f"controllers[{index}] ({ctl.id})"
        seen = first.setdefault(ctl.line_key, (index, ctl))
        if seen[1] is not ctl:
            _same_line_settings(where, seen, ctl)
        other = units.setdefault((ctl.line_key, ctl.device_id), (index, ctl))
        if other[1] is not ctl:
            raise ValueError(
                f"{where} and controllers[{other[0]}] ({other[1].id}) are both device_id "
                f"{ctl.device_id} on {ctl.line_name}; fix: give each device on a line its "
                "own device_id (its address on the line)"
            )


def _same_line_settings(
    where: str, seen: tuple[int, ModbusControllerConfig], ctl: ModbusControllerConfig
) -> None:
    mine, theirs = ctl.line_settings(), seen[1].line_settings()
    differ = [k for k in mine if mine[k] != theirs[k]]
    if differ:
        keys = ", ".join(f"serial.{k}" if k != "timeout_s" else k for k in differ)
        raise ValueError(
            f"{where} and controllers[{seen[0]}] ({seen[1].id}) are on one line "
            f"({ctl.line_name}) but differ in {keys}; one connection serves a line, so its "
            f"settings are the line's; fix: give both the same {keys}"
        )


def _one_framing_per_endpoint(
    framing: dict[tuple[str, int], tuple[int, ModbusControllerConfig]],
    index: int,
    ctl: ModbusControllerConfig,
) -> None:
    other = framing.setdefault((ctl.host.lower(), ctl.port), (index, ctl))
    if other[1].transport != ctl.transport:
        raise ValueError(
            f"controllers[{index}] ({ctl.id}) uses transport {ctl.transport} and "
            f"controllers[{other[0]}] ({other[1].id}) transport {other[1].transport} at one "
            f"address, {ctl.host}:{ctl.port}; a port speaks one framing; fix: correct the "
            "transport or the port of one of them"
        )


def describe_connection(
    ctl: ModbusControllerConfig, controllers: Sequence[object] = ()
) -> list[str]:
    """The way to a controller that is not plain Modbus TCP, as ``otwatch-agent check``
    prints it: its line, who shares it (of ``controllers``), and a warning when its serial
    port does not exist here (``check`` never connects; it only looks the device file up)::

        line: serial port /dev/ttyUSB0, 19200 8E1 RTU, device_id 3, timeout 0.5 s; one
        connection with dryer-02 (requests take turns)
    """
    if ctl.transport == "tcp":
        return []
    others = [
        c.id for c in controllers
        if isinstance(c, ModbusControllerConfig) and c is not ctl and c.line_key == ctl.line_key
    ]
    line = f"line: {ctl.line_name}"
    if ctl.serial is not None:
        line += f", {ctl.serial.character_format}"
    line += f", device_id {ctl.device_id}, timeout {ctl.timeout_s:g} s"
    if others:
        line += f"; one connection with {', '.join(others)} (requests take turns)"
    out = [line]
    if ctl.serial is not None and not os.path.exists(ctl.serial.port):
        out.append(
            f"warning: serial port {ctl.serial.port} does not exist on this host (yet); the "
            f"agent reports {ctl.id} unreachable until it does; fix: check serial.port "
            "(ls /dev/serial/by-id/)"
        )
    return out
