"""The Modbus read plan: pure, table-driven (the golden cases of `check` are test_check.py)."""

from __future__ import annotations

import pytest

from agent.sources.modbus import ModbusTag
from agent.sources.modbus.plan import ReadRequest, plan_reads
from tests.agent.sources.factories import modbus_tag as tag


def shape(requests: list[ReadRequest]) -> list[tuple[str, int, int, list[str]]]:
    return [(r.table, r.start, r.count, [t.name for t in r.tags]) for r in requests]


@pytest.mark.parametrize(
    ("tags", "max_gap", "expected"),
    [
        pytest.param([tag("a", 0)], 16, [("holding", 0, 1, ["a"])], id="one tag"),
        pytest.param(
            [tag("a", 0, "float32"), tag("b", 2), tag("c", 3, "uint32")],
            16,
            [("holding", 0, 5, ["a", "b", "c"])],
            id="adjacent coalesce",
        ),
        pytest.param(
            [tag("b", 15), tag("a", 0)],
            16,
            [("holding", 0, 16, ["a", "b"])],
            id="small gap bridged, sorted by address",
        ),
        pytest.param(
            [tag("a", 0), tag("b", 20)],
            10,
            [("holding", 0, 1, ["a"]), ("holding", 20, 1, ["b"])],
            id="gap larger than max_gap splits",
        ),
        pytest.param(
            [tag("a", 0), tag("b", 124)],
            200,
            [("holding", 0, 125, ["a", "b"])],
            id="exactly 125 registers fits",
        ),
        pytest.param(
            [tag("a", 0), tag("b", 125)],
            200,
            [("holding", 0, 1, ["a"]), ("holding", 125, 1, ["b"])],
            id="126 registers split",
        ),
        pytest.param(
            [tag("a", 0, "float64"), tag("b", 122, "float64")],
            200,
            [("holding", 0, 4, ["a"]), ("holding", 122, 4, ["b"])],
            id="a wide type that would cross the limit starts a new request",
        ),
        pytest.param(
            [
                tag("a", 0),
                tag("b", 0, table="input"),
                tag("c", 5, "bool", table="coil", kind="mode"),
            ],
            16,
            [("holding", 0, 1, ["a"]), ("input", 0, 1, ["b"]), ("coil", 5, 1, ["c"])],
            id="tables never mix",
        ),
        pytest.param(
            [
                tag("c1", 0, "bool", table="coil", kind="mode"),
                tag("c2", 1999, "bool", table="coil", kind="mode"),
            ],
            2000,
            [("coil", 0, 2000, ["c1", "c2"])],
            id="2000 bits fit one request",
        ),
        pytest.param(
            [tag("s", 10, "string", length=4), tag("n", 14)],
            0,
            [("holding", 10, 5, ["s", "n"])],
            id="string length counts",
        ),
        pytest.param(
            [tag("b0", 7, "bit", bit=0), tag("b3", 7, "bit", bit=3)],
            0,
            [("holding", 7, 1, ["b0", "b3"])],
            id="bits of one register share it",
        ),
    ],
)
def test_plan_reads(
    tags: list[ModbusTag], max_gap: int, expected: list[tuple[str, int, int, list[str]]]
) -> None:
    assert shape(plan_reads(tags, max_gap=max_gap)) == expected
