"""Scenarios played on the real simulated plant, checked with independent clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from asyncua.client.client import Client
from pymodbus.client import AsyncModbusTcpClient

from simulators.plant import load_plant
from simulators.process import run_lots, run_measurements
from simulators.runtime import SimulatedPlant
from simulators.scenario import Scenario, load_scenario, play
from tests.simulators.conftest import PLANT_FILE, ROOT, free_ports

SCENARIOS = ROOT / "config" / "scenarios"
# One plant for the module (an OPC UA server takes seconds to build); reset before each test.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_plant() -> AsyncIterator[SimulatedPlant]:
    config = load_plant(PLANT_FILE)
    async with SimulatedPlant(config, free_ports(config), process=False) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def plant(shared_plant: SimulatedPlant) -> SimulatedPlant:
    await shared_plant.reset()
    return shared_plant


async def test_runtime_api_reads_writes_and_counts(plant: SimulatedPlant) -> None:
    assert plant.endpoint("press-01") == f"127.0.0.1:{plant.port('press-01')}"
    assert (
        plant.endpoint("oven-01") == f"opc.tcp://127.0.0.1:{plant.port('oven-01')}/otwatch/oven-01"
    )
    assert plant.namespace_uri("oven-01") == "urn:otwatch:sim:oven-01"
    await plant.write("press-01", "temperature_sp", 185.0, actor="j.doe")
    assert await plant.read("press-01", "temperature_sp") == 185.0
    client = AsyncModbusTcpClient("127.0.0.1", port=plant.port("press-01"), timeout=1, retries=0)
    await client.connect()
    try:
        await client.write_register(6, 1250, device_id=1)
    finally:
        client.close()
    assert plant.foreign_writes("press-01") == 1
    assert plant.foreign_writes("oven-01") == 0
    assert [r.actor for r in plant.history] == ["j.doe"]


async def test_demo_labels_approvals_and_values(plant: SimulatedPlant, tmp_path: Path) -> None:
    labels_out, approvals_out = tmp_path / "labels.jsonl", tmp_path / "approvals.yaml"
    labels = await play(
        plant, load_scenario(SCENARIOS / "demo.yaml"), labels_out, approvals_out, speed=20
    )
    lines = [json.loads(line) for line in labels_out.read_text().splitlines()]
    assert len(lines) == len(labels) == 2
    first, second = lines
    assert {k: first[k] for k in ("controller", "tag", "old_value", "new_value")} == {
        "controller": "press-01",
        "tag": "temperature_sp",
        "old_value": 180.0,
        "new_value": 185.0,
    }
    assert (first["expected_verdict"], first["actor"]) == ("authorized", "j.doe")
    assert (second["controller"], second["old_value"], second["new_value"]) == (
        "oven-01",
        200.0,
        230.0,
    )
    assert (second["expected_verdict"], second["change_kind"]) == ("unapproved", "setpoint_change")
    assert first["time"].endswith("Z") and first["time"] <= second["time"]
    (approval,) = yaml.safe_load(approvals_out.read_text())["approvals"]
    assert approval["id"] == "CR-demo-1" and approval["expected"] == {"exact": 185.0}
    assert approval["approved_by"] == "j.doe" and approval["single_use"] is True
    async with Client(plant.endpoint("oven-01")) as client:
        idx = await client.get_namespace_index(plant.namespace_uri("oven-01"))
        temp = client.get_node(f"ns={idx};s=Oven.Zone1.TemperatureSP")
        assert await temp.read_value() == 230.0
    assert plant.foreign_writes("press-01") == plant.foreign_writes("oven-01") == 0


async def test_maintenance_approves_every_change_and_restores(
    plant: SimulatedPlant, tmp_path: Path
) -> None:
    approvals_out = tmp_path / "approvals.yaml"
    labels = await play(
        plant, load_scenario(SCENARIOS / "maintenance.yaml"), approvals_out=approvals_out, speed=50
    )
    records = yaml.safe_load(approvals_out.read_text())["approvals"]
    assert len(records) == len(labels) == 6
    assert {lb.expected_verdict for lb in labels} == {"authorized"}
    assert [lb.approval_id for lb in labels] == [r["id"] for r in records]
    restore = labels[-1]
    assert (restore.old_value, restore.new_value) == (1150, 1200)
    assert records[-1]["expected"] == {"exact": 1200}
    assert await plant.read("oven-01", "recipe_id") == "R-200"


async def test_program_download_restarts_and_renumbers(plant: SimulatedPlant) -> None:
    index_before = plant.plc("oven-01").namespace_index  # type: ignore[union-attr]
    labels = await play(plant, load_scenario(SCENARIOS / "program-download.yaml"), speed=20)
    downloads = [lb for lb in labels if lb.action == "program_download"]
    assert [lb.change_kind for lb in downloads] == ["program_change", "program_change"]
    assert [lb.expected_verdict for lb in downloads] == ["authorized", "unapproved"]
    assert downloads[1].new_value == "e3a0c55d19b7f402"
    async with Client(plant.endpoint("oven-01")) as client:
        idx = await client.get_namespace_index(plant.namespace_uri("oven-01"))
        assert idx == index_before + 2
        node = client.get_node(f"ns={idx};s=Oven.Program.Checksum")
        assert await node.read_value() == "e3a0c55d19b7f402"


async def test_outage_faults_and_offline_change(plant: SimulatedPlant) -> None:
    labels = await play(plant, load_scenario(SCENARIOS / "outage.yaml"), speed=25)
    offline = next(lb for lb in labels if lb.action == "offline_change")
    assert (offline.old_value, offline.new_value) == (180.0, 182.0)
    assert offline.change_kind == "changed_while_unwatched"
    assert offline.expected_verdict == "unapproved"
    faults = [lb for lb in labels if lb.tag is None]
    assert {lb.expected_verdict for lb in faults} == {None}
    press = plant.plc("press-01")
    assert press.faults.exception is None and press.faults.delay_s == 0  # type: ignore[union-attr]
    assert await plant.read("oven-01", "temperature_sp") == 205.0


async def test_burst_changes_every_controller(plant: SimulatedPlant) -> None:
    labels = await play(plant, load_scenario(SCENARIOS / "burst.yaml"), speed=10)
    assert {lb.controller for lb in labels} == {"press-01", "press-02", "oven-01"}
    assert await plant.read("press-02", "force_sp") == 260.0
    assert sum(lb.expected_verdict == "authorized" for lb in labels) == 1


async def test_lots_advance_on_the_line_schedule(plant: SimulatedPlant) -> None:
    """120 s per lot at 600x speed: a new lot every 0.2 s, seen by an independent client."""
    (line,) = plant.config.lines
    assert line.lots is not None
    lots = asyncio.create_task(run_lots(plant, line.id, line.lots, speed=600))
    try:
        async with Client(plant.endpoint("oven-01")) as client:
            idx = await client.get_namespace_index(plant.namespace_uri("oven-01"))
            lot = client.get_node(f"ns={idx};s=Oven.Lot.Id")
            for _ in range(200):
                if await lot.read_value() not in ("LOT-0001", "LOT-0002"):
                    break
                await asyncio.sleep(0.05)
            value = await lot.read_value()
    finally:
        lots.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lots
    assert value.startswith("LOT-") and int(value[4:]) >= 3
    counter = await plant.read("press-01", "lot_counter")
    assert isinstance(counter, int) and counter > 1000
    assert plant.history == []  # process writes are not scenario writes
    assert plant.foreign_writes("press-01") == plant.foreign_writes("oven-01") == 0


async def test_measurements_follow_their_setpoints(plant: SimulatedPlant) -> None:
    """The process model moves each measurement toward the setpoint it follows, seen by an
    independent client; the moves are the PLC's own (no scenario write, no foreign write)."""
    assert ("oven-01", "temperature_actual", "temperature_sp") in plant.config.measurements()
    await plant.write("oven-01", "temperature_sp", 240.0, actor="test")
    plant.history.clear()
    moving = asyncio.create_task(run_measurements(plant, plant.config.measurements(), speed=20))
    try:
        async with Client(plant.endpoint("oven-01")) as client:
            idx = await client.get_namespace_index(plant.namespace_uri("oven-01"))
            actual = client.get_node(f"ns={idx};s=Oven.Zone1.Temperature")
            for _ in range(200):
                if await actual.read_value() > 230.0:
                    break
                await asyncio.sleep(0.05)
            value = await actual.read_value()
    finally:
        moving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await moving
    assert 230.0 < value < 245.0
    assert plant.history == []
    assert plant.foreign_writes("oven-01") == 0


async def test_labels_say_when_an_action_started_and_ended(plant: SimulatedPlant) -> None:
    labels = await play(plant, load_scenario(SCENARIOS / "program-download.yaml"), speed=20)
    for label in labels:
        assert label.started is not None and label.started <= label.time
    download = next(lb for lb in labels if lb.action == "program_download")
    assert download.started is not None
    assert (download.time - download.started).total_seconds() >= 2 / 20  # its downtime


async def test_an_overrunning_action_slips_the_timeline_and_keeps_the_gaps(
    plant: SimulatedPlant,
) -> None:
    """The restart overruns its 0.2 s slot by 0.8 s; the two changes after it keep their 0.3 s
    gap instead of firing back to back (a value that lived 0.1 ms would be no test at all)."""
    scenario = Scenario.model_validate({"name": "slip", "actions": [
        {"at": 0, "action": "restart", "controller": "oven-01", "downtime_s": 1.0},
        {"at": 0.2, "action": "change", "controller": "press-01", "tag": "temperature_sp",
         "value": 181.0},
        {"at": 0.5, "action": "change", "controller": "press-01", "tag": "temperature_sp",
         "value": 182.0},
    ]})
    restart, first, second = await play(plant, scenario)
    assert restart.started is not None and first.started is not None
    assert second.started is not None
    assert first.started >= restart.time  # it waited for the restart, as before
    assert (second.started - first.started).total_seconds() >= 0.3 - 0.005
