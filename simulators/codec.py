"""Engineering values <-> Modbus registers: data type, scale and word order. Pure functions.

Example::

    >>> encode(tag_float32_big, 180.0)
    [17204, 0]
    >>> decode(tag_int16_x10, [125])
    12.5
"""

from __future__ import annotations

import math
import struct

from simulators.errors import ValueOutOfRange
from simulators.plant import ModbusTag, ModbusType, WordOrder

_STRUCT = {
    ModbusType.INT16: "h",
    ModbusType.UINT16: "H",
    ModbusType.INT32: "i",
    ModbusType.UINT32: "I",
    ModbusType.FLOAT32: "f",
}


def _raw(tag: ModbusTag, value: bool | int | float | str) -> int | float:
    """The number stored in the registers: the engineering value times the scale."""
    if isinstance(value, str) or isinstance(value, bool):
        raise ValueOutOfRange(f"tag {tag.name!r} ({tag.type.value}) cannot hold {value!r}")
    scaled = value * tag.scale
    if tag.type is ModbusType.FLOAT32:
        return float(scaled)
    if not math.isfinite(scaled):
        raise ValueOutOfRange(f"tag {tag.name!r} cannot hold {value!r}")
    return round(scaled)


def encode(tag: ModbusTag, value: bool | int | float | str) -> list[int]:
    """Registers (high byte first in each) for a holding-register tag, in its word order."""
    if tag.type is ModbusType.BOOL:
        raise ValueOutOfRange(f"tag {tag.name!r} is a coil; it has no registers")
    try:
        packed = struct.pack(f">{_STRUCT[tag.type]}", _raw(tag, value))
    except (struct.error, OverflowError) as exc:
        raise ValueOutOfRange(
            f"tag {tag.name!r} ({tag.type.value}, scale {tag.scale:g}) cannot hold {value!r}"
        ) from exc
    words = [int.from_bytes(packed[i : i + 2], "big") for i in range(0, len(packed), 2)]
    return words[::-1] if tag.word_order is WordOrder.LITTLE else words


def decode(tag: ModbusTag, registers: list[int]) -> int | float:
    """The engineering value of a holding-register tag; integers stay ``int`` at scale 1."""
    words = registers[::-1] if tag.word_order is WordOrder.LITTLE else list(registers)
    packed = b"".join(w.to_bytes(2, "big") for w in words)
    raw: int | float = struct.unpack(f">{_STRUCT[tag.type]}", packed)[0]
    if tag.type is ModbusType.FLOAT32:
        return float(raw) / tag.scale if tag.scale != 1 else float(raw)
    if tag.scale == 1:
        return int(raw)
    return round(raw / tag.scale, 6)
