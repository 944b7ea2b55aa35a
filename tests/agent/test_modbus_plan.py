"""The Modbus read plan and register decoding: pure, table-driven."""

from __future__ import annotations

import pytest

from agent.config import ModbusTag
from agent.sources.modbus.decode import decode, decode_request
from agent.sources.modbus.plan import ReadRequest, plan_reads


def tag(name: str, address: int, data_type: str = "uint16", **kw: object) -> ModbusTag:
    kind = kw.pop("kind", "setpoint")
    return ModbusTag.model_validate(
        {"name": name, "address": address, "data_type": data_type, "kind": kind, **kw}
    )


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


@pytest.mark.parametrize(
    ("spec", "words", "expected"),
    [
        ({"data_type": "int16"}, [0xFFFE], -2),
        ({"data_type": "uint16"}, [0xFFFE], 65534),
        ({"data_type": "int32"}, [0xFFFF, 0xFFFF], -1),
        ({"data_type": "uint32"}, [0x0001, 0x0002], 65538),
        ({"data_type": "uint32", "word_order": "little"}, [0x0002, 0x0001], 65538),
        ({"data_type": "float32"}, [0x4339, 0x0000], 185.0),
        ({"data_type": "float32", "word_order": "little"}, [0x0000, 0x4339], 185.0),
        ({"data_type": "float32", "byte_order": "little"}, [0x3943, 0x0000], 185.0),
        ({"data_type": "float64"}, [0x4067, 0x2000, 0x0000, 0x0000], 185.0),
        ({"data_type": "int16", "scale": 0.1}, [125], 12.5),
        ({"data_type": "int16", "scale": 0.1, "offset": -40.0}, [600], 20.0),
        ({"data_type": "string", "length": 3}, [0x4C4F, 0x5431, 0x0000], "LOT1"),
        ({"data_type": "bit", "bit": 2}, [0b0100], True),
        ({"data_type": "bit", "bit": 1}, [0b0100], False),
    ],
)
def test_decode(spec: dict[str, object], words: list[int], expected: object) -> None:
    t = ModbusTag.model_validate({"name": "x", "address": 0, "kind": "setpoint", **spec})
    assert (
        decode(t, words) == pytest.approx(expected)
        if isinstance(expected, float)
        else decode(t, words) == expected
    )


def test_decode_request_splits_values_by_tag() -> None:
    tags = [tag("t", 0, "float32"), tag("p", 2, "int16", scale=0.1), tag("r", 5)]
    (request,) = plan_reads(tags)
    values = decode_request(request, [0x4339, 0x0000, 125, 0, 0, 7])
    assert values == {"t": 185.0, "p": 12.5, "r": 7}
