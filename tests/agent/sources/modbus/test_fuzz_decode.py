"""Fuzzing Modbus decoding (hypothesis): every data type, word and byte order, scale and
offset, with registers that are NaN or infinite floats, out of range, or too few: each tag
gets a value or a `DecodeError` that names it, never another exception, and a scan's decoding
(`decode_tags`) never raises at all."""

from __future__ import annotations

import math
import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.sources.modbus import ModbusTag
from agent.sources.modbus.decode import DecodeError, compile_request, decode, decode_tags
from agent.sources.modbus.plan import plan_reads

FUZZ = settings(max_examples=300, deadline=None)
TYPES = ["int16", "uint16", "int32", "uint32", "float32", "float64", "string", "bit"]
EXPECTED_TYPE = {"string": str, "bit": bool}


@st.composite
def tags(draw: st.DrawFn, name: str = "t", address: int | None = None) -> ModbusTag:
    data_type = draw(st.sampled_from(TYPES))
    spec: dict[str, Any] = {
        "name": name, "kind": "setpoint", "data_type": data_type,
        "address": draw(st.integers(0, 40)) if address is None else address,
        "word_order": draw(st.sampled_from(["big", "little"])),
        "byte_order": draw(st.sampled_from(["big", "little"])),
        "scale": draw(st.one_of(st.just(1.0), st.floats(allow_nan=True, allow_infinity=True))),
        "offset": draw(st.one_of(st.just(0.0), st.floats(allow_nan=True, allow_infinity=True))),
    }
    if data_type == "string":
        spec["length"] = draw(st.integers(1, 6))
    if data_type == "bit":
        spec["bit"] = draw(st.integers(0, 15))
    return ModbusTag.model_validate(spec)


def non_finite_floats() -> st.SearchStrategy[list[int]]:
    """The registers of a NaN or an infinite float32/float64, in either word order."""
    values = st.sampled_from([math.nan, math.inf, -math.inf])
    as32 = values.map(lambda v: list(struct.unpack(">2H", struct.pack(">f", v))))
    as64 = values.map(lambda v: list(struct.unpack(">4H", struct.pack(">d", v))))
    return st.one_of(as32, as64).flatmap(lambda w: st.sampled_from([w, w[::-1]]))


registers = st.one_of(
    st.lists(st.integers(0, 0xFFFF), max_size=8),
    st.lists(st.integers(-(2**20), 2**20), max_size=8),  # out of range
    non_finite_floats(),
)


@FUZZ
@given(tags(), registers)
def test_a_tag_decodes_to_a_value_or_a_named_error(tag: ModbusTag, words: list[int]) -> None:
    try:
        value = decode(tag, words)
    except DecodeError as exc:
        assert str(exc).startswith(f"tag {tag.name}: ")
        assert len(words) < tag.register_count or any(not 0 <= w <= 0xFFFF for w in words)
        return
    expected = EXPECTED_TYPE.get(tag.data_type, (int, float))
    assert isinstance(value, expected), (tag.data_type, value)


@FUZZ
@given(st.lists(tags(), min_size=1, max_size=6), st.data())
def test_a_scan_of_any_answer_gives_each_tag_a_value_or_a_reason(
    specs: list[ModbusTag], data: st.DataObject
) -> None:
    named = [t.model_copy(update={"name": f"t{i}"}) for i, t in enumerate(specs)]
    for request in plan_reads(named):
        size = data.draw(st.integers(0, request.count + 2))  # short, whole or long answers
        words = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=size, max_size=size))
        values, bad = decode_tags(request, words)
        assert set(values) | set(bad) == {t.name for t in request.tags}
        assert not set(values) & set(bad)
        if size == request.count:
            assert not bad
            compiled = compile_request(request)(words)
            assert set(compiled) == set(values)


@FUZZ
@given(tags(address=0), non_finite_floats())
def test_nan_and_infinities_in_float_registers_are_values(
    tag: ModbusTag, words: list[int]
) -> None:
    if tag.data_type not in ("float32", "float64") or len(words) < tag.register_count:
        return
    value = decode(tag, words)
    assert isinstance(value, float)
