"""Modbus read plans: which requests read a controller's tags, and how registers become values.

Both are pure functions, compiled once at start-up and tested table-driven. A plan
coalesces nearby addresses of one table into one request of at most 125 registers
(2,000 bits), bridging gaps of up to ``max_gap`` unused registers where one request is
cheaper than two round trips.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from agent.config import ModbusTag

MAX_REGISTERS = 125
MAX_BITS = 2000


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One Modbus read: function by table, `count` items from `start`, and the tags it covers."""

    table: str
    start: int
    count: int
    tags: tuple[ModbusTag, ...]

    @property
    def is_bits(self) -> bool:
        return self.table in ("coil", "discrete")


def plan_reads(tags: Sequence[ModbusTag], *, max_gap: int = 16) -> list[ReadRequest]:
    """Group tags into as few requests as the size limits allow, in address order."""
    requests: list[ReadRequest] = []
    for table in ("holding", "input", "coil", "discrete"):
        in_table = sorted((t for t in tags if t.table == table), key=lambda t: t.address)
        requests.extend(_plan_table(table, in_table, max_gap))
    return requests


def _plan_table(table: str, tags: list[ModbusTag], max_gap: int) -> list[ReadRequest]:
    limit = MAX_BITS if table in ("coil", "discrete") else MAX_REGISTERS
    out: list[ReadRequest] = []
    group: list[ModbusTag] = []
    start = end = 0
    for tag in tags:
        t_end = tag.address + tag.register_count
        fits = group and tag.address - end <= max_gap and max(end, t_end) - start <= limit
        if fits:
            group.append(tag)
            end = max(end, t_end)
            continue
        if group:
            out.append(ReadRequest(table, start, end - start, tuple(group)))
        group, start, end = [tag], tag.address, t_end
    if group:
        out.append(ReadRequest(table, start, end - start, tuple(group)))
    return out


_STRUCT = {
    "int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I",
    "float32": ">f", "float64": ">d",
}


def decode(tag: ModbusTag, words: Sequence[int]) -> float | int | str | bool:
    """Turn a tag's raw registers into its engineering value (word/byte order, scale, offset)."""
    if tag.data_type == "bit":
        return bool((words[0] >> (tag.bit or 0)) & 1)
    ordered = list(words) if tag.word_order == "big" else list(reversed(words))
    raw = b"".join(w.to_bytes(2, "big") for w in ordered)
    if tag.byte_order == "little":
        raw = b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))
    if tag.data_type == "string":
        return raw.rstrip(b"\x00 ").decode("ascii", errors="replace")
    (value,) = struct.unpack(_STRUCT[tag.data_type], raw)
    if tag.scale == 1.0 and tag.offset == 0.0:
        return value  # type: ignore[no-any-return]
    return float(value) * tag.scale + tag.offset


def decode_request(request: ReadRequest, values: Sequence[int] | Sequence[bool]) -> dict[str, object]:
    """Split one response into tag values; `values` are registers or bits from `request.start`."""
    out: dict[str, object] = {}
    for tag in request.tags:
        at = tag.address - request.start
        if request.is_bits:
            out[tag.name] = bool(values[at])
        else:
            out[tag.name] = decode(tag, [int(v) for v in values[at : at + tag.register_count]])
    return out
