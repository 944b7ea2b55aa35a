"""The plant description: site, lines, controllers and their tags (``config/plant.yaml``).

Pure config: nothing here opens a socket. ``load_plant`` validates the file and names the file,
the key and the fix for every problem.

Example::

    >>> plant = load_plant("config/plant.yaml")
    >>> plant.controller("press-01").tag("temperature_sp").address
    0
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulators.configfile import load_model
from simulators.errors import PlantConfigError, UnknownTagError


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TagKind(StrEnum):
    """What a tag means to the plant; mirrors the agent's tag kinds plus ``context``.

    A ``measurement`` is a process value (an actual temperature): the process model moves it
    toward the setpoint it ``follows``, as the process would.
    """

    SETPOINT = "setpoint"
    RECIPE = "recipe"
    PROGRAM = "program"
    MODE = "mode"
    CONTEXT = "context"
    MEASUREMENT = "measurement"


class _TagCommon(_Config):
    """What both protocols' tags have beside their address."""

    name: str
    unit: str | None = None
    kind: TagKind = TagKind.SETPOINT
    critical: bool = False
    #: A measurement: the tag (of the same controller) whose value it moves toward.
    follows: str | None = None

    @model_validator(mode="after")
    def _follows_only_measurements(self) -> _TagCommon:
        if self.follows is not None and self.kind is not TagKind.MEASUREMENT:
            raise ValueError(f"tag {self.name!r}: follows is for kind: measurement")
        return self


class ModbusType(StrEnum):
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    BOOL = "bool"


class WordOrder(StrEnum):
    """Big: high word first (Modicon convention). Little: low word first."""

    BIG = "big"
    LITTLE = "little"


class ModbusTable(StrEnum):
    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"

    @property
    def is_bits(self) -> bool:
        return self in (ModbusTable.COIL, ModbusTable.DISCRETE)


REGISTER_COUNT = {
    ModbusType.INT16: 1,
    ModbusType.UINT16: 1,
    ModbusType.INT32: 2,
    ModbusType.UINT32: 2,
    ModbusType.FLOAT32: 2,
    ModbusType.BOOL: 1,
}

Scalar = bool | int | float | str


class ModbusTag(_TagCommon):
    """One value in a Modbus device: a block of holding or input registers, a coil or a
    discrete input (0-based protocol addresses, as the agent's)."""

    table: ModbusTable = ModbusTable.HOLDING
    address: int = Field(ge=0, le=65535)
    type: ModbusType
    word_order: WordOrder = WordOrder.BIG
    scale: float = Field(default=1.0, gt=0, description="stored = round(value * scale)")
    initial: Scalar = 0
    device_id: int | None = Field(default=None, ge=0, le=255, description="gateway sub-device")

    @model_validator(mode="after")
    def _table_matches_type(self) -> ModbusTag:
        if self.table.is_bits != (self.type is ModbusType.BOOL):
            raise ValueError(
                f"tag {self.name!r}: table {self.table.value} does not fit type {self.type.value}"
                " (use table: coil or discrete with type: bool, holding or input for numbers)"
            )
        return self

    @property
    def register_count(self) -> int:
        return REGISTER_COUNT[self.type]


class OpcUaType(StrEnum):
    DOUBLE = "Double"
    FLOAT = "Float"
    INT32 = "Int32"
    UINT32 = "UInt32"
    STRING = "String"
    BOOLEAN = "Boolean"


class OpcUaTag(_TagCommon):
    """One variable with a string node id ``Unit.Sub.Name``; the dotted prefix is its folders."""

    node: str = Field(pattern=r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+$")
    type: OpcUaType
    initial: Scalar
    eu_range: tuple[float, float] | None = None

    @property
    def folders(self) -> list[str]:
        return self.node.split(".")[:-1]

    @property
    def browse_name(self) -> str:
        return self.node.split(".")[-1]


def _unique_names(controller: str, tags: list[ModbusTag] | list[OpcUaTag]) -> None:
    """Tag names are unique, and a measurement follows a tag of its own controller."""
    seen: set[str] = set()
    for tag in tags:
        if tag.name in seen:
            raise ValueError(f"controller {controller!r}: tag {tag.name!r} is defined twice")
        seen.add(tag.name)
    for tag in tags:
        if tag.follows is not None and tag.follows not in seen:
            raise ValueError(
                f"controller {controller!r}: tag {tag.name!r} follows {tag.follows!r}, which it "
                "does not have (fix: name a tag of this controller)"
            )


class ModbusSerialPort(_Config):
    """The serial line a simulated PLC serves (in tests, one end of a ``socat`` pty pair)."""

    port: str = Field(min_length=1, description="the device file, e.g. /tmp/x/plc-end")
    mode: Literal["rtu", "ascii"] = "rtu"
    baudrate: int = Field(default=19200, gt=0)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1


class ModbusController(_Config):
    id: str
    protocol: Literal["modbus"]
    #: tcp (Modbus TCP), rtu_over_tcp (RTU frames on a TCP port, as a serial gateway), or
    #: serial (RTU or ASCII on ``serial.port``, no TCP port).
    transport: Literal["tcp", "rtu_over_tcp", "serial"] = "tcp"
    port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port")
    serial: ModbusSerialPort | None = None
    device_id: int = Field(default=1, ge=0, le=255)
    validated: bool = False
    tags: list[ModbusTag]

    @model_validator(mode="after")
    def _serial_line(self) -> ModbusController:
        if (self.transport == "serial") != (self.serial is not None):
            raise ValueError(
                f"controller {self.id!r}: transport serial and `serial: {{port: ...}}` go "
                "together (fix: set both, or neither)"
            )
        if self.transport != "tcp" and 0 in self.device_ids():
            raise ValueError(
                f"controller {self.id!r}: device id 0 is the broadcast address on a serial "
                "line (fix: give its devices ids 1-247)"
            )
        return self

    @model_validator(mode="after")
    def _no_overlap(self) -> ModbusController:
        _unique_names(self.id, self.tags)
        used: dict[tuple[int, str, int], str] = {}
        for tag in self.tags:
            for reg in range(tag.address, tag.address + tag.register_count):
                key = (tag.device_id or self.device_id, tag.table.value, reg)
                if key in used:
                    raise ValueError(
                        f"controller {self.id!r}: tag {tag.name!r} overlaps tag {used[key]!r}"
                        f" at {tag.table.value} address {reg} (move one of them)"
                    )
                used[key] = tag.name
        return self

    def tag(self, name: str) -> ModbusTag:
        for tag in self.tags:
            if tag.name == name:
                return tag
        raise UnknownTagError(f"controller {self.id!r} has no tag {name!r}")

    def device_ids(self) -> list[int]:
        return sorted({t.device_id or self.device_id for t in self.tags} | {self.device_id})


class OpcUaController(_Config):
    id: str
    protocol: Literal["opcua"]
    port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port")
    namespace_uri: str
    path: str = Field(default="", description="endpoint path, default /otwatch/<id>")
    validated: bool = False
    tags: list[OpcUaTag]

    @model_validator(mode="after")
    def _unique(self) -> OpcUaController:
        _unique_names(self.id, self.tags)
        nodes = [t.node for t in self.tags]
        if len(set(nodes)) != len(nodes):
            raise ValueError(f"controller {self.id!r}: two tags share one node id")
        return self

    def endpoint_path(self) -> str:
        return self.path or f"/otwatch/{self.id}"

    def tag(self, name: str) -> OpcUaTag:
        for tag in self.tags:
            if tag.name == name:
                return tag
        raise UnknownTagError(f"controller {self.id!r} has no tag {name!r}")


Controller = Annotated[ModbusController | OpcUaController, Field(discriminator="protocol")]


class TagRef(_Config):
    controller: str
    tag: str


class LotSchedule(_Config):
    """The line's process model: a new lot starts every ``interval_s`` seconds."""

    interval_s: float = Field(gt=0)
    lot_tags: list[TagRef] = Field(description="string lot-id tags (e.g. Oven.Lot.Id)")
    counter_tags: list[TagRef] = Field(default_factory=list, description="numeric lot counters")
    recipe_tags: list[TagRef] = Field(default_factory=list, description="reloaded per lot")


class Line(_Config):
    id: str
    lots: LotSchedule | None = None
    controllers: list[Controller]


class PlantConfig(_Config):
    """The whole simulated plant. Controller ids are unique across lines."""

    site: str
    lines: list[Line]

    @model_validator(mode="after")
    def _check_refs(self) -> PlantConfig:
        ids = [c.id for line in self.lines for c in line.controllers]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"controller ids must be unique; duplicated: {dupes}")
        for line in self.lines:
            refs = (
                []
                if line.lots is None
                else [*line.lots.lot_tags, *line.lots.counter_tags, *line.lots.recipe_tags]
            )
            for ref in refs:
                try:
                    self.controller(ref.controller).tag(ref.tag)
                except UnknownTagError as exc:
                    raise ValueError(f"line {line.id!r} lots: {exc}") from None
        return self

    def measurements(self) -> list[tuple[str, str, str]]:
        """(controller, measurement tag, the tag it follows) for every measurement that
        follows one: what the process model moves."""
        return [
            (ctrl.id, tag.name, tag.follows)
            for ctrl in self.controllers()
            for tag in ctrl.tags
            if tag.follows is not None
        ]

    def controllers(self) -> list[ModbusController | OpcUaController]:
        return [c for line in self.lines for c in line.controllers]

    def controller(self, controller_id: str) -> ModbusController | OpcUaController:
        for ctrl in self.controllers():
            if ctrl.id == controller_id:
                return ctrl
        raise UnknownTagError(f"the plant has no controller {controller_id!r}")

    def line_of(self, controller_id: str) -> str:
        for line in self.lines:
            if any(c.id == controller_id for c in line.controllers):
                return line.id
        raise UnknownTagError(f"the plant has no controller {controller_id!r}")


def load_plant(path: Path | str) -> PlantConfig:
    """Load and validate a plant file; raises ``PlantConfigError`` naming file, key and fix."""
    return load_model(path, PlantConfig, PlantConfigError)
