"""Pure functions: register encoding (types, scale, word order), lots, measurements,
restores, approvals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from simulators.approvals import approval_records
from simulators.codec import decode, encode
from simulators.errors import ScenarioError, ValueOutOfRange
from simulators.plant import ModbusTag, PlantConfig
from simulators.process import next_counter, next_lot, next_measurement
from simulators.scenario import Scenario, check_against, resolve_restores
from tests.simulators.conftest import PLANT_FILE


def tag(**kw: object) -> ModbusTag:
    return ModbusTag.model_validate({"name": "t", "address": 0, **kw})


@pytest.mark.parametrize(
    ("spec", "value", "registers"),
    [
        ({"type": "float32"}, 180.0, [0x4334, 0x0000]),
        ({"type": "float32", "word_order": "little"}, 180.0, [0x0000, 0x4334]),
        ({"type": "int16", "scale": 10}, 12.5, [125]),
        ({"type": "int16"}, -2, [0xFFFE]),
        ({"type": "uint16"}, 1200, [1200]),
        ({"type": "uint32"}, 1000, [0, 1000]),
        ({"type": "uint32", "word_order": "little"}, 70000, [70000 - 65536, 1]),
        ({"type": "int32", "word_order": "little", "scale": 100}, 250.25, [25025, 0]),
        ({"type": "int32"}, -1, [0xFFFF, 0xFFFF]),
    ],
)
def test_encode_and_decode_round_trip(
    spec: dict[str, object], value: float, registers: list[int]
) -> None:
    t = tag(**spec)
    assert encode(t, value) == registers
    assert decode(t, registers) == value


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        ({"type": "int16"}, 40000),
        ({"type": "uint16"}, -1),
        ({"type": "int16", "scale": 10}, 4000),
        ({"type": "uint16"}, "ten"),
    ],
)
def test_values_that_do_not_fit_are_refused(spec: dict[str, object], value: object) -> None:
    with pytest.raises(ValueOutOfRange, match="'t'"):
        encode(tag(**spec), value)  # type: ignore[arg-type]


def test_lots_advance_keeping_their_format() -> None:
    assert next_lot("LOT-0001") == "LOT-0002"
    assert next_lot("LOT-0999") == "LOT-1000"
    assert next_lot("B7") == "B8"
    assert next_lot("ABC") == "ABC-0001"
    assert next_counter(1000) == 1001
    assert next_counter("x") == 1


def _scenario(actions: list[dict[str, object]]) -> Scenario:
    return Scenario.model_validate({"name": "t", "actions": actions})


def test_a_restore_puts_back_the_value_before_the_last_change() -> None:
    scenario = _scenario(
        [
            {"at": 1, "controller": "press-01", "tag": "speed_sp", "value": 1500},
            {
                "at": 2,
                "action": "restore",
                "controller": "press-01",
                "tag": "speed_sp",
                "approved": True,
            },
        ]
    )
    resolved = resolve_restores(scenario, {("press-01", "speed_sp"): 1200})
    assert resolved.timeline()[1].value == 1200


def test_approval_records_follow_the_agent_format() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    scenario = _scenario(
        [
            {"at": 5, "controller": "oven-01", "tag": "mode", "value": "MANUAL"},
            {
                "at": 3,
                "controller": "press-01",
                "tag": "temperature_sp",
                "value": 185.0,
                "actor": "j.doe",
                "approved": True,
                "reason": "why",
            },
        ]
    )
    (record,) = approval_records(scenario, now)
    assert record == {
        "id": "CR-t-1",
        "controller": "press-01",
        "tag": "temperature_sp",
        "expected": {"exact": 185.0},
        "valid_from": "2026-11-23T11:00:00Z",
        "valid_until": "2026-11-23T13:00:00Z",
        "approved_by": "j.doe",
        "approved_at": "2026-11-23T11:00:00Z",
        "reason": "why",
        "change_control_ref": "CC-1",
        "single_use": True,
    }


def test_approval_records_name_the_kind_of_change_given_the_plant() -> None:
    from simulators.plant import load_plant

    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    scenario = _scenario([
        {"at": 1, "controller": "oven-01", "tag": "mode", "value": "PROGRAM", "approved": True},
        {"at": 2, "controller": "oven-01", "tag": "program_checksum", "value": "4b1d",
         "approved": True, "action": "program_download"},
        {"at": 3, "controller": "press-01", "tag": "speed_sp", "value": 1150, "approved": True},
    ])
    mode, program, speed = approval_records(scenario, now, load_plant(PLANT_FILE))
    assert (mode["change"], mode["expected"]) == ("mode", {"exact": "PROGRAM"})
    assert (program["change"], program["expected"]) == ("program", {"checksum": "4b1d"})
    assert (speed["change"], speed["expected"]) == ("setpoint", {"exact": 1150})


def test_a_measurement_moves_toward_its_setpoint_and_never_stands_still() -> None:
    values = [200.0]
    for tick in range(1, 30):
        values.append(float(next_measurement(values[-1], 240.0, tick)))
    assert values[1] > values[0] and abs(values[-1] - 240.0) < 2.0
    assert values[-1] != values[-2]  # it wobbles
    assert next_measurement("LOT", 240.0, 1) == "LOT"  # not a number: left alone


def test_a_measurement_follows_a_tag_of_its_controller_and_is_never_a_scenario_write() -> None:
    from simulators.plant import load_plant

    plant = load_plant(PLANT_FILE)
    data = plant.model_dump(mode="json")
    data["lines"][0]["controllers"][0]["tags"].append(
        {"name": "flow", "address": 40, "type": "int16", "kind": "measurement",
         "follows": "nozzle_sp"})
    with pytest.raises(ValueError, match="follows 'nozzle_sp', which it does not have"):
        PlantConfig.model_validate(data)
    scenario = _scenario([{"at": 1, "controller": "oven-01", "tag": "temperature_actual",
                           "value": 210.0}])
    with pytest.raises(ScenarioError, match="a measurement is moved by the process"):
        check_against(plant, scenario)
