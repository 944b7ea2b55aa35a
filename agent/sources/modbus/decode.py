"""Modbus decoding: a response's registers (or bits) in, tag values out (pure).

`decode` is the reference: one tag, its registers, word and byte order, scale and offset.
`compile_request` builds, once per planned request, a decoder that gives the same values for
the whole response with one `struct` unpack; the table-driven and property tests hold the
two together. A scan runs the compiled decoders on whole answers, and `decode_tags` on an
answer of the wrong length: each tag gets its value or a `DecodeError` that names it (too few
registers, a register out of range), never a crash of the scan. NaN and the infinities of a
float register are values like any other.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from operator import itemgetter

from agent.contract import TagValue
from agent.sources.modbus.config import ModbusTag
from agent.sources.modbus.plan import RawValues, ReadRequest


class DecodeError(ValueError):
    """A tag's registers cannot be decoded; the message names the tag and what is wrong."""


_STRUCT = {
    "int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I",
    "float32": ">f", "float64": ">d",
}


def decode(tag: ModbusTag, words: Sequence[int]) -> float | int | str | bool:
    """Turn a tag's raw registers into its engineering value (word/byte order, scale, offset).

    The reference decoding: `compile_request` gives the same values faster, and falls back
    to this for the rare shapes (strings, bits, swapped bytes, overlapping tags). Raises
    `DecodeError` for too few registers or a register outside 0..65535.
    """
    _check_words(tag, words)
    words = words[: tag.register_count]  # a longer list: its first registers are the tag's
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


def _check_words(tag: ModbusTag, words: Sequence[int]) -> None:
    need = tag.register_count
    if len(words) < need:
        raise DecodeError(
            f"tag {tag.name}: {tag.data_type} at {tag.table} {tag.address} needs {need} "
            f"registers, the answer has {len(words)}"
        )
    for word in words[:need]:
        if not 0 <= word <= 0xFFFF:
            raise DecodeError(
                f"tag {tag.name}: register value {word} at {tag.table} {tag.address} is not "
                "16 bits (0..65535)"
            )


def decode_tags(
    request: ReadRequest, values: RawValues
) -> tuple[dict[str, TagValue], dict[str, str]]:
    """Tag by tag, for an answer that may be short or damaged: the values that decode, and
    for each tag that does not, why (its `DecodeError`)."""
    out: dict[str, TagValue] = {}
    bad: dict[str, str] = {}
    for tag in request.tags:
        try:
            out.update(_decode_slowly(_one(request, tag), values))
        except DecodeError as exc:
            bad[tag.name] = str(exc)
    return out, bad


def _one(request: ReadRequest, tag: ModbusTag) -> ReadRequest:
    """``request`` narrowed to one of its tags (same start: the answer's offsets hold)."""
    return ReadRequest(request.table, request.start, request.count, (tag,))


def decode_request(request: ReadRequest, values: RawValues) -> dict[str, object]:
    """Split one response into tag values; `values` are registers or bits from `request.start`."""
    return dict(compile_request(request)(values))


#: A compiled request: the response's registers (or bits) in, ``{tag name: value}`` out.
RequestDecoder = Callable[[RawValues], dict[str, TagValue]]


def compile_request(request: ReadRequest) -> RequestDecoder:
    """Compile `request` once into its decoder, so a scan does no per-tag planning."""
    if request.is_bits:
        return _BitDecoder(request)
    return _RegisterDecoder(request)


def _decode_slowly(request: ReadRequest, values: RawValues) -> dict[str, TagValue]:
    """Tag by tag with `decode`: the reference the compiled decoders must agree with."""
    out: dict[str, TagValue] = {}
    for tag in request.tags:
        at = tag.address - request.start
        if request.is_bits:
            if at >= len(values):
                raise DecodeError(f"tag {tag.name}: {tag.table} {tag.address} is not in the answer")
            out[tag.name] = bool(values[at])
        else:
            out[tag.name] = decode(tag, [int(v) for v in values[at : at + tag.register_count]])
    return out


class _BitDecoder:
    """Coils and discrete inputs: one bit per tag."""

    __slots__ = ("_at", "_request")

    def __init__(self, request: ReadRequest) -> None:
        self._request = request
        self._at = [(tag.name, tag.address - request.start) for tag in request.tags]

    def __call__(self, values: RawValues) -> dict[str, TagValue]:
        if len(values) < self._request.count:  # a short answer: fail exactly as the reference
            return _decode_slowly(self._request, values)
        return {name: bool(values[at]) for name, at in self._at}


def _packable(tag: ModbusTag) -> bool:
    """Tags that one big-endian `struct` format for the whole block can decode."""
    return tag.data_type in _STRUCT and tag.byte_order == "big"


class _RegisterDecoder:
    """Registers: one `struct` unpack decodes every plain numeric tag of the block at once.

    The block's registers are packed to bytes (word-swapped tags get their registers
    reversed on the way, by one `itemgetter`) and unpacked with a format that has a field
    per tag and pad bytes for the gaps. Scale and offset apply only to tags that have them.
    Strings, bits, byte-swapped and overlapping tags are decoded one by one with `decode`.
    """

    __slots__ = (
        "_layout", "_names", "_order", "_ordered", "_others", "_pack", "_request", "_scaled",
    )

    def __init__(self, request: ReadRequest) -> None:
        self._request = request
        self._pack = struct.Struct(f">{request.count}H").pack
        fields, order, others = [], list(range(request.count)), []
        names: list[str] = []
        scaled: list[tuple[str, int, float, float]] = []
        end = 0  # registers (from the block start) laid out so far
        for tag in request.tags:
            at, width = tag.address - request.start, tag.register_count
            if not _packable(tag) or at < end:
                others.append((tag, at, width))
                continue
            fields.append(f"{2 * (at - end)}x{_STRUCT[tag.data_type][1]}")
            if tag.word_order == "little":
                order[at : at + width] = reversed(order[at : at + width])
            if tag.scale != 1.0 or tag.offset != 0.0:
                scaled.append((tag.name, len(names), tag.scale, tag.offset))
            names.append(tag.name)
            end = at + width
        self._layout = struct.Struct(">" + "".join(fields))
        self._order = itemgetter(*order) if order != sorted(order) else None
        self._names, self._scaled, self._others = tuple(names), tuple(scaled), tuple(others)
        #: The reference's key order, restored only when some tags were decoded one by one.
        self._ordered = tuple(t.name for t in request.tags) if others else None

    def __call__(self, values: RawValues) -> dict[str, TagValue]:
        if len(values) != self._request.count:  # a short answer: fail exactly as the reference
            return _decode_slowly(self._request, values)
        words = values if self._order is None else self._order(values)
        raw = self._layout.unpack_from(self._pack(*words))
        out: dict[str, TagValue] = dict(zip(self._names, raw, strict=True))
        for name, index, scale, offset in self._scaled:
            out[name] = float(raw[index]) * scale + offset
        if self._ordered is None:
            return out
        for tag, at, width in self._others:
            out[tag.name] = decode(tag, [int(v) for v in values[at : at + width]])
        return {name: out[name] for name in self._ordered}
