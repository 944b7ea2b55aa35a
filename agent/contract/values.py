"""How a tag's value is written in an event (schema ``otwatch.change/2``), and read back.

JSON has no NaN and no infinities, and a PLC value can be larger than a Kafka message. So a
value is plain JSON whenever it can be (null, true/false, integers, finite floats, strings,
objects for recipes, arrays inside objects), and a one-member object whose key starts with
``$`` when it cannot:

``{"$float": "NaN"}``, ``{"$float": "Infinity"}``, ``{"$float": "-Infinity"}``
    A float that is not a number or is infinite, spelled as JavaScript's ``Number()``, Java's
    ``Double.parseDouble`` and Python's ``float()`` read it. (A SIEM that reads the event as
    plain JSON sees an object with a string, never a ``null`` that hides the change.)
``{"$truncated": {"sha256": "<hex>", "length": <bytes>, "head": "<first characters>"}}``
    A value whose JSON is over the agent's size limit: the SHA-256 of the full value's
    canonical JSON (`canonical_json` of `encode_value`), that JSON's length in bytes, and the
    first characters of the value (a string's own text, anything else's JSON).

In Python a NaN or an infinity is the float itself, and a truncated value stays the mapping
above (so it compares, copies and dumps like any other value; `truncated` reads it typed).
The same rules hold inside recipe mappings, in ``context`` and in the snapshot. Integers
beyond 64 bits, which JSON readers disagree on, are carried as floats. A recipe parameter
named ``$float`` or ``$truncated`` alone in its mapping is read as the marker: those two keys
are reserved.

Example::

    >>> encode_value(float("nan")), encode_value({"id": "R7", "speed": float("inf")})
    ({'$float': 'NaN'}, {'id': 'R7', 'speed': {'$float': 'Infinity'}})
    >>> decode_value({"$float": "-Infinity"})
    -inf
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
)

#: A tag's value: numbers, text, booleans; a recipe is a mapping (id, version, parameters).
TagValue = bool | int | float | str | dict[str, Any] | None

FLOAT_KEY = "$float"
TRUNCATED_KEY = "$truncated"

_FLOAT_NAMES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
#: The integers every JSON reader agrees on (orjson writes no others).
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
#: Nesting deeper than this is refused: no PLC value is shaped like that, and a reader's stack
#: is not an attacker's to spend.
MAX_DEPTH = 32
_HEX64 = r"^[0-9a-f]{64}$"


class TruncatedValue(BaseModel):
    """What stands for a value over the size limit (the member of ``{"$truncated": ...}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    sha256: str = Field(pattern=_HEX64)
    length: int = Field(ge=0)
    head: str


def float_name(value: float) -> str:
    """``NaN``, ``Infinity`` or ``-Infinity`` for a float that is not finite."""
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def encode_value(value: Any) -> Any:
    """A value as the event's JSON carries it (NaN and infinities as ``{"$float": ...}``)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:  # most values: as they are
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {FLOAT_KEY: float_name(value)}
    if isinstance(value, dict):
        return {key: encode_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encode_value(item) for item in value]
    return value


def decode_value(value: Any, depth: int = 0) -> TagValue:
    """A value from the event's JSON (or from Python): markers read, anything else refused.

    Raises `ValueError` naming what is wrong (pydantic reports it with the field's place).
    """
    if value is None or isinstance(value, bool | str | float):
        return value
    if isinstance(value, int):
        return value if _INT_MIN <= value <= _INT_MAX else _big_int(value)
    if isinstance(value, dict):
        return _decode_mapping(value, depth)
    raise ValueError(
        f"a tag value is null, a boolean, a number, a string or an object, not {_kind(value)}"
    )


def _decode_nested(value: Any, depth: int) -> Any:
    if isinstance(value, list | tuple):
        if depth >= MAX_DEPTH:
            raise ValueError(f"a tag value nested deeper than {MAX_DEPTH} levels")
        return [_decode_nested(item, depth + 1) for item in value]
    return decode_value(value, depth)


def _decode_mapping(value: dict[Any, Any], depth: int) -> TagValue:
    if depth >= MAX_DEPTH:
        raise ValueError(f"a tag value nested deeper than {MAX_DEPTH} levels")
    if len(value) == 1:
        ((key, inner),) = value.items()
        if key == FLOAT_KEY:
            return _named_float(inner)
        if key == TRUNCATED_KEY:
            try:
                return {TRUNCATED_KEY: TruncatedValue.model_validate(inner).model_dump()}
            except ValidationError as exc:
                # One line: the reason travels into dead letters and log lines.
                problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}"
                                     for e in exc.errors())
                raise ValueError(
                    f"{TRUNCATED_KEY} needs sha256, length and head ({problems})") from None
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise ValueError(f"object keys in a tag value are strings, not {_kind(key)}")
        out[key] = _decode_nested(item, depth + 1)
    return out


def _named_float(name: Any) -> float:
    if isinstance(name, str) and name in _FLOAT_NAMES:
        return _FLOAT_NAMES[name]
    raise ValueError(f'{FLOAT_KEY} is "NaN", "Infinity" or "-Infinity", not {name!r}')


def _big_int(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _kind(value: object) -> str:
    if isinstance(value, list | tuple):
        return "an array"
    name = type(value).__name__
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def decode_mapping(values: Any) -> dict[str, TagValue]:
    """``context`` and the snapshot's values: a mapping of names to tag values."""
    if not isinstance(values, dict):
        raise ValueError(f"expected an object of values, not {_kind(values)}")
    out: dict[str, TagValue] = {}
    for key, item in values.items():
        if not isinstance(key, str):
            raise ValueError(f"names are strings, not {_kind(key)}")
        out[key] = decode_value(item, 1)
    return out


def truncated(value: Any) -> TruncatedValue | None:
    """The truncation a value stands for, or None for a value carried whole."""
    if isinstance(value, dict) and len(value) == 1 and TRUNCATED_KEY in value:
        return TruncatedValue.model_validate(value[TRUNCATED_KEY])
    return None


def canonical_json(data: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8 (orjson): the bytes events are published and signed as.

    A text that UTF-8 cannot hold (a lone surrogate) is written with U+FFFD in its place, so a
    strange string never stops an event from being written.
    """
    try:
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return orjson.dumps(scrub(data), option=orjson.OPT_SORT_KEYS)


def scrub(data: Any) -> Any:
    if isinstance(data, str):
        return data.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(data, int) and not isinstance(data, bool):
        return data if _INT_MIN <= data <= _INT_MAX else _big_int(data)
    if isinstance(data, Mapping):
        return {scrub(k): scrub(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [scrub(v) for v in data]
    return data


_VALUE_SCHEMA = WithJsonSchema({"description": "a tag value (see agent.contract.values)"})

#: An event's ``old_value`` / ``new_value``: a `TagValue`, written as the module docstring says.
EventValue = Annotated[
    TagValue,
    PlainValidator(decode_value),
    PlainSerializer(encode_value, when_used="json"),
    _VALUE_SCHEMA,
]

#: ``context`` and the snapshot's values: names to tag values, each written as `EventValue`.
ValueMap = Annotated[
    dict[str, TagValue],
    PlainValidator(decode_mapping),
    PlainSerializer(encode_value, when_used="json"),
    _VALUE_SCHEMA,
]
