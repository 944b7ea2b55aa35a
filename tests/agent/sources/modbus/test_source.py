"""What the Modbus source adds to the transport and the decoders: unchanged values keep their
`Reading` objects, and the poll schedule runs on fixed deadlines (pure: no connection)."""

from __future__ import annotations

import math
from typing import Any

from agent.sources.modbus.source import ModbusSource, _next_deadline
from tests.agent.sources.factories import modbus_controller


def source(*specs: dict[str, Any]) -> ModbusSource:
    return ModbusSource(modbus_controller(*specs))


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
