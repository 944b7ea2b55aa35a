"""Every sample config loads; bad files fail with the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.errors import PlantConfigError, ScenarioError
from simulators.plant import ModbusController, OpcUaController, load_plant
from simulators.scenario import check_against, load_scenario
from tests.simulators.conftest import PLANT_FILE, SCENARIOS


def test_sample_plant_has_the_skeleton_controllers() -> None:
    plant = load_plant(PLANT_FILE)
    assert plant.site == "plant-1"
    assert plant.line_of("press-01") == "line-1"
    press = plant.controller("press-01")
    oven = plant.controller("oven-01")
    assert isinstance(press, ModbusController) and press.port == 15020
    assert isinstance(oven, OpcUaController) and oven.port == 14840
    assert oven.namespace_uri == "urn:otwatch:sim:oven-01"
    assert oven.tag("temperature_sp").node == "Oven.Zone1.TemperatureSP"
    assert [t.name for t in press.tags][:4] == [
        "temperature_sp",
        "pressure_sp",
        "recipe_no",
        "lot_counter",
    ]


def test_the_shipped_scenarios_are_all_there() -> None:
    names = {p.stem for p in SCENARIOS}
    assert {"demo", "tamper", "maintenance", "program-download", "outage", "burst"} <= names


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_scenario_loads_and_fits_the_plant(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    check_against(load_plant(PLANT_FILE), scenario, str(path))


def test_maintenance_is_all_approved_and_tamper_is_none() -> None:
    by_name = {p.stem: load_scenario(p) for p in SCENARIOS}
    assert all(a.approved for a in by_name["maintenance"].actions)
    assert not any(a.approved for a in by_name["tamper"].actions)


@pytest.mark.parametrize(
    ("snippet", "key"),
    [
        ("site: s\nlines: [{id: l, controllers: [], colour: red}]\n", "lines[0].colour"),
        ("lines: []\n", "site"),
        (
            "site: s\nlines: [{id: l, controllers: [{id: p, protocol: modbus, tags: "
            "[{name: a, address: 0, type: float32}, {name: b, address: 1, type: int16}]}]}]\n",
            "overlaps tag 'a'",
        ),
        (
            "site: s\nlines: [{id: l, controllers: [{id: p, protocol: modbus, tags: "
            "[{name: a, address: 0, type: int16, table: coil}]}]}]\n",
            "table coil does not fit type int16",
        ),
        ("site: s\nlines: [{id: l, controllers: [{id: p, protocol: profibus}]}]\n", "protocol"),
    ],
)
def test_a_bad_plant_names_file_key_and_fix(tmp_path: Path, snippet: str, key: str) -> None:
    path = tmp_path / "plant.yaml"
    path.write_text(snippet)
    with pytest.raises(PlantConfigError) as err:
        load_plant(path)
    assert str(path) in str(err.value)
    assert key in str(err.value)
    assert "fix:" in str(err.value)


def test_unreadable_and_malformed_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(PlantConfigError, match="cannot read"):
        load_plant(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: [unclosed\n")
    with pytest.raises(PlantConfigError, match="not valid YAML"):
        load_plant(bad)


def test_a_scenario_naming_an_unknown_tag_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nactions: [{at: 1, controller: press-01, tag: colour, value: 1}]\n")
    with pytest.raises(ScenarioError, match=r"actions\[0\].*colour"):
        check_against(load_plant(PLANT_FILE), load_scenario(path), str(path))


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("{at: 1, controller: press-01}", "needs tag"),
        ("{at: 1, controller: press-01, tag: speed_sp}", "needs value"),
        ("{at: 1, action: modbus_exception, controller: press-01}", "needs exception"),
        ("{at: 1, action: restart, controller: press-01, approved: true}", "cannot be approved"),
        ("{at: -1, controller: press-01, tag: speed_sp, value: 1}", "actions[0].at"),
    ],
)
def test_a_bad_scenario_names_the_problem(tmp_path: Path, action: str, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(f"name: s\nactions: [{action}]\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert message in str(err.value) and str(path) in str(err.value)
