"""The compiled Modbus decoders agree with the reference `decode`, and the scan reuses readings.

`compile_request` decodes a whole block with one `struct` format; these tests hold it to the
tag-by-tag reference on generated tags and registers (all types, word and byte orders, gaps,
overlaps, scale and offset), and check what the source adds on top: unchanged values keep
their `Reading` objects, and the poll schedule runs on fixed deadlines.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config import ModbusControllerConfig, ModbusTag
from agent.sources.modbus.decode import _decode_slowly, compile_request
from agent.sources.modbus.plan import plan_reads
from agent.sources.modbus.source import ModbusSource, _next_deadline, _same

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


def test_a_short_answer_fails_like_the_reference() -> None:
    (request,) = plan_reads([ModbusTag.model_validate(
        {"name": "f", "kind": "setpoint", "address": 0, "data_type": "float32"}
    )])
    with pytest.raises(struct.error):
        _decode_slowly(request, [1])
    with pytest.raises(struct.error):
        compile_request(request)([1])


def source(*specs: dict[str, Any]) -> ModbusSource:
    return ModbusSource(ModbusControllerConfig.model_validate(
        {"id": "plc-x", "protocol": "modbus", "tags": [{"kind": "setpoint", **s} for s in specs]}
    ))


def test_unchanged_values_keep_their_reading_objects() -> None:
    src = source({"name": "a", "address": 0}, {"name": "b", "address": 1, "data_type": "float32"})
    first = src._readings(0, [5, 0x4339, 0x0000])
    again = src._readings(0, [5, 0x4339, 0x0000])
    assert again["a"] is first["a"] and again["b"] is first["b"]
    changed = src._readings(0, [6, 0x4339, 0x0000])
    assert changed["a"].value == 6 and changed["a"] is not first["a"]
    assert changed["b"] is first["b"]  # its registers did not change


def test_a_sign_change_of_zero_is_a_new_reading() -> None:
    src = source({"name": "f", "address": 0, "data_type": "float32"})
    zero = src._readings(0, [0x0000, 0x0000])["f"]
    minus_zero = src._readings(0, [0x8000, 0x0000])["f"]
    assert minus_zero is not zero and math.copysign(1.0, minus_zero.value) == -1.0  # type: ignore[arg-type]


def test_poll_deadlines_do_not_drift_and_do_not_burst() -> None:
    assert _next_deadline(10.0, 1.0, now=10.3) == 11.0  # on schedule: lag does not add up
    assert _next_deadline(10.0, 1.0, now=12.5) == 12.5  # overran: next scan at once, no burst
