"""Modbus decoding: the reference `decode`, table-driven, and the compiled decoders held to it.

`compile_request` decodes a whole block with one `struct` format; these tests hold it to the
tag-by-tag reference on generated tags and registers (all types, word and byte orders, gaps,
overlaps, scale and offset).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.sources.modbus import ModbusTag
from agent.sources.modbus.decode import (
    DecodeError,
    _decode_slowly,
    compile_request,
    decode,
    decode_request,
    decode_tags,
)
from agent.sources.modbus.plan import plan_reads
from agent.sources.modbus.source import _same
from tests.agent.sources.factories import modbus_tag as tag

_WIDTH = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "float64": 4}


@st.composite
def register_tag(draw: st.DrawFn, n: int) -> dict[str, Any]:
    data_type = draw(st.sampled_from([*_WIDTH, "string", "bit"]))
    spec: dict[str, Any] = {
        "name": f"t{n}",
        "kind": "setpoint",
        "address": draw(st.integers(0, 60)),
        "data_type": data_type,
        "word_order": draw(st.sampled_from(["big", "little"])),
        "byte_order": draw(st.sampled_from(["big", "big", "little"])),
    }
    if data_type == "string":
        spec["length"] = draw(st.integers(1, 4))
    if data_type == "bit":
        spec["bit"] = draw(st.integers(0, 15))
    if draw(st.booleans()):
        spec["scale"] = draw(st.sampled_from([0.1, 0.01, 10.0, -2.5]))
        spec["offset"] = draw(st.sampled_from([0.0, -40.0, 273.15]))
    return spec


def same_values(a: dict[str, object], b: dict[str, object]) -> bool:
    """Equal key order, types and values; NaN equals NaN, and 0.0 is not -0.0."""
    if list(a) != list(b):
        return False
    for key, x in a.items():
        y = b[key]
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if not _same(x, y):  # type: ignore[arg-type]
            return False
    return True


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_compiled_registers_match_the_reference(data: st.DataObject) -> None:
    specs = [data.draw(register_tag(n)) for n in range(data.draw(st.integers(1, 12)))]
    tags = [ModbusTag.model_validate(s) for s in specs]
    for request in plan_reads(tags, max_gap=data.draw(st.integers(0, 16))):
        size = request.count
        words = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=size, max_size=size))
        assert same_values(compile_request(request)(words), _decode_slowly(request, words))  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 100), min_size=1, max_size=20, unique=True), st.data())
def test_compiled_bits_match_the_reference(addresses: list[int], data: st.DataObject) -> None:
    tags = [
        ModbusTag.model_validate(
            {"name": f"c{a}", "kind": "mode", "table": "coil", "address": a, "data_type": "bool"}
        )
        for a in addresses
    ]
    for request in plan_reads(tags):
        size = request.count
        bits = data.draw(st.lists(st.booleans(), min_size=size, max_size=size + 7))
        assert compile_request(request)(bits) == _decode_slowly(request, bits)


def test_the_scale_plant_block_decodes_like_the_reference() -> None:
    """The benchmark's shape: contiguous int16/uint16/int32/float32, some words swapped."""
    types = [("int16", 0.1), ("uint16", 1.0), ("int32", 0.01), ("float32", 1.0)]
    tags, address = [], 0
    for n in range(60):
        data_type, scale = types[n % 4]
        tags.append(ModbusTag.model_validate({
            "name": f"sp_{n}", "kind": "setpoint", "address": address, "data_type": data_type,
            "scale": scale, "word_order": "little" if n % 8 == 3 else "big",
        }))
        address += _WIDTH[data_type]
    words = [(7919 * i) % 0x10000 for i in range(address)]
    for request in plan_reads(tags):
        block = words[request.start : request.start + request.count]
        assert same_values(compile_request(request)(block), _decode_slowly(request, block))  # type: ignore[arg-type]


def test_a_short_answer_fails_like_the_reference_naming_the_tag() -> None:
    (request,) = plan_reads([ModbusTag.model_validate(
        {"name": "f", "kind": "setpoint", "address": 0, "data_type": "float32"}
    )])
    words = "needs 2 registers, the answer has 1"
    with pytest.raises(DecodeError, match=f"tag f: float32 at holding 0 {words}"):
        _decode_slowly(request, [1])
    with pytest.raises(DecodeError, match=words):
        compile_request(request)([1])


def test_a_short_answer_decodes_tag_by_tag() -> None:
    (request,) = plan_reads([tag("a", 0), tag("f", 1, "float32"), tag("s", 3, "string",
                                                                          length=2)])
    values, bad = decode_tags(request, [7, 0x4339, 0])
    assert values == {"a": 7, "f": 185.0}
    assert set(bad) == {"s"} and "needs 2 registers, the answer has 0" in bad["s"]
    values, bad = decode_tags(request, [70000, 0x4339, 0, 0x4142, 0])
    assert "not 16 bits" in bad["a"] and values["s"] == "AB"


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
