"""Modbus read plans: which requests read a controller's tags (pure, built once at start-up).

A plan coalesces nearby addresses of one table into one request of at most 125 registers
(2,000 bits), bridging gaps of up to ``max_gap`` unused registers where one request is
cheaper than two round trips. How an answer becomes tag values is the business of
`agent.sources.modbus.decode`. `describe_plan` is the plan as ``otwatch-agent check`` prints
it, for the sample config's press-01::

    read holding 0..13 (14): temperature_sp, pressure_sp, recipe_no, lot_counter, speed_sp, ...
    read coil 0..1 (2): auto_mode, maintenance_mode
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.sources.modbus.config import ModbusControllerConfig, ModbusTag

MAX_REGISTERS = 125
MAX_BITS = 2000

#: One response's values from the request's start: registers, or bits for coils and inputs.
RawValues = Sequence[int] | Sequence[bool]


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


def describe_plan(config: ModbusControllerConfig) -> list[str]:
    """The controller's read plan in words, a line a request, as ``otwatch-agent check``
    prints it: ``read <table> <first>..<last> (<count>): <tag names>``."""
    lines = []
    for req in plan_reads(config.tags, max_gap=config.max_gap):
        names = ", ".join(t.name for t in req.tags)
        end = req.start + req.count - 1
        lines.append(f"read {req.table} {req.start}..{end} ({req.count}): {names}")
    return lines
