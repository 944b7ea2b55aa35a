"""What the Modbus source adds to the transport and the decoders: unchanged values keep their
`Reading` objects (and an unchanged scan its readings, in a dict of its own), a refused or
damaged request's tags come back when it is answered again, and the poll schedule runs on
fixed deadlines (pure: no connection; a scripted device stands in for the transport)."""

from __future__ import annotations

import math
from typing import Any

from agent.sources.modbus.plan import RawValues, ReadRequest
from agent.sources.modbus.source import ModbusSource, _next_deadline
from agent.sources.modbus.transport import Refusal
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


class ScriptedDevice:
    """Stands in for the transport: answers each request from a script of raw answers."""

    def __init__(self, answers: dict[int, RawValues | Refusal]) -> None:
        self.answers = answers  # by request start

    async def read(self, request: ReadRequest, *, paced: bool = False) -> RawValues | Refusal:
        return self.answers[request.start]


def scripted(answers: dict[int, RawValues | Refusal]) -> tuple[ModbusSource, ScriptedDevice]:
    src = source({"name": "a", "address": 0}, {"name": "b", "address": 1},
                 {"name": "far", "address": 500})
    device = ScriptedDevice(answers)
    src.transport = device  # type: ignore[assignment]
    return src, device


async def test_an_unchanged_scan_gives_the_same_readings_in_a_dict_of_its_own() -> None:
    src, _ = scripted({0: [1, 2], 500: [3]})
    first, _ = await src.scan()
    first.pop("a")  # whoever got the first scan's dict may change it ...
    again, bad = await src.scan()
    assert again is not first and bad == {}
    assert {k: r.value for k, r in again.items()} == {"a": 1, "b": 2, "far": 3}  # ... not this
    third, _ = await src.scan()
    assert third["b"] is again["b"] and third is not again


async def test_a_request_answered_again_brings_its_tags_back_and_changes_show() -> None:
    src, device = scripted({0: [1, 2], 500: [3]})
    await src.scan()
    device.answers[500] = Refusal(6)
    values, bad = await src.scan()
    assert set(values) == {"a", "b"} and set(bad) == {"far"}
    device.answers[500] = [3]  # the same registers as before the refusal
    values, bad = await src.scan()
    assert {k: r.value for k, r in values.items()} == {"a": 1, "b": 2, "far": 3} and bad == {}
    device.answers[0] = [1, 7]
    values, _ = await src.scan()
    assert {k: r.value for k, r in values.items()} == {"a": 1, "b": 7, "far": 3}


async def test_a_damaged_answer_then_a_whole_one() -> None:
    src, device = scripted({0: [1, 2], 500: [3]})
    await src.scan()
    device.answers[0] = [1]  # too short: "b" has no register
    values, bad = await src.scan()
    assert {k: r.value for k, r in values.items()} == {"a": 1, "far": 3} and set(bad) == {"b"}
    device.answers[0] = [1, 2]
    values, bad = await src.scan()
    assert {k: r.value for k, r in values.items()} == {"a": 1, "b": 2, "far": 3} and bad == {}
