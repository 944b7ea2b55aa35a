"""Tags named by browse path: checked at load time, resolved on every connect, never a silent gap.

Against the real simulated oven: its program-download fault renumbers the namespaces, and a
path with namespace URIs must survive that. A path that does not resolve (or stops resolving
after a restart) is reported: the session names it in ``Connected.unresolved``, the other tags
are watched as before, and the agent records a monitoring gap on that tag, once per spell.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from agent import metrics
from agent.config import AgentConfig, OpcuaControllerConfig
from agent.contract import ChangeKind, Verdict
from agent.sources.base import Connected, Readings
from agent.sources.opcua import OpcuaSource
from simulators.opcua_plc import OpcUaPLC
from simulators.runtime import SimulatedPlant
from tests.agent.sources.opcua.conftest import OVEN
from tests.agent.sources.running import Recorder, changes, is_complete
from tests.agent.test_agent_detects import config_for, running, spooled, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

URI = "urn:otwatch:sim:oven-01"
#: The oven's tags by browse path (its folders are browse names in the plant's namespace).
PATHS = {
    "temperature_sp": "/Objects/Oven/Zone1/TemperatureSP",
    "dwell_time_sp": "/Objects/Oven/Zone1/DwellTimeSP",
    "temperature_actual": "/Objects/Oven/Zone1/Temperature",
    "recipe_id": "/Objects/Oven/Recipe/ActiveId",
    "recipe_version": "/Objects/Oven/Recipe/Version",
    "recipe_temperature": "/Objects/Oven/Recipe/Parameters/Temperature",
    "recipe_dwell_time": "/Objects/Oven/Recipe/Parameters/DwellTime",
    "lot_id": "/Objects/Oven/Lot/Id",
    "program_checksum": "/Objects/Oven/Program/Checksum",
    "mode": "/Objects/Oven/Mode",
}


def by_path(oven: OpcuaControllerConfig, **paths: str) -> OpcuaControllerConfig:
    """The oven with every tag named by browse path (``paths`` override some)."""
    tags = [
        tag.model_copy(update={"node": None, "browse_path": {**PATHS, **paths}[tag.name],
                               "namespace_uri": URI})
        for tag in oven.tags
    ]
    return OpcuaControllerConfig.model_validate({**oven.model_dump(), "tags": [
        t.model_dump(exclude_none=True) for t in tags]})


def unresolved_of(event: object) -> dict[str, str]:
    assert isinstance(event, Connected)
    return event.unresolved


async def test_paths_survive_a_restart_that_renumbers_the_namespaces(
    plant: SimulatedPlant, oven: OpcuaControllerConfig
) -> None:
    plc = plant.plc(OVEN)
    assert isinstance(plc, OpcUaPLC)
    config = by_path(oven)
    async with Recorder(OpcuaSource(config)) as rec:
        i, first = await rec.next(lambda e: isinstance(e, Connected))
        i, full = await rec.next(is_complete, after=i)
        assert unresolved_of(first) == {}
        assert isinstance(full, Readings) and set(full.values) == set(PATHS)
        index = plc.namespace_index
        await plc.restart(renumber=True)
        assert plc.namespace_index > index  # the download moved the plant's namespace
        j, second = await rec.next(lambda e: isinstance(e, Connected) and e is not first,
                                   after=i)
        j, again = await rec.next(is_complete, after=j)
        assert unresolved_of(second) == {}
        assert isinstance(again, Readings) and set(again.values) == set(PATHS)
        value = float(again.values["temperature_sp"].value) + 1.5  # type: ignore[arg-type]
        await plant.write(OVEN, "temperature_sp", value, actor="eng.k")
        _, change = await rec.next(changes("temperature_sp", value), after=j)
    assert isinstance(change, Readings) and change.actors == {"temperature_sp": "eng.k"}


async def test_a_path_that_does_not_resolve_is_named_and_the_rest_is_watched(
    plant: SimulatedPlant, oven: OpcuaControllerConfig
) -> None:
    config = by_path(oven, dwell_time_sp="/Objects/Oven/Zone9/DwellTimeSP")
    nodes = [t.model_dump(exclude_none=True) for t in config.tags]
    nodes[0] = {**nodes[0], "browse_path": None, "namespace_uri": None,
                "node": "nsu=urn:nowhere;s=Oven.Zone1.TemperatureSP"}
    config = OpcuaControllerConfig.model_validate(
        {**config.model_dump(), "tags": [{k: v for k, v in t.items() if v is not None}
                                         for t in nodes]})
    async with Recorder(OpcuaSource(config.model_copy(update={"mode": "poll"}))) as rec:
        i, connected = await rec.next(lambda e: isinstance(e, Connected))
        _, full = await rec.next(is_complete, after=i)
    missing = unresolved_of(connected)
    assert set(missing) == {"dwell_time_sp", "temperature_sp"}
    assert "/Objects/Oven/Zone9/DwellTimeSP no longer resolves" in missing["dwell_time_sp"]
    assert "BadNoMatch" in missing["dwell_time_sp"]
    assert "namespace 'urn:nowhere' of tag temperature_sp is not on the server" in (
        missing["temperature_sp"])
    assert isinstance(full, Readings)
    assert set(full.values) == set(PATHS) - {"dwell_time_sp", "temperature_sp"}


@contextmanager
def renamed_folder(plc: OpcUaPLC) -> Iterator[None]:
    """While inside: the PLC (after its next restart) serves Zone1 as ZoneA, as a program
    download that restructures the address space would; restored on the way out."""
    original = plc.config
    tags = [t.model_copy(update={"node": t.node.replace(".Zone1.", ".ZoneA.")})
            for t in original.tags]
    plc.config = original.model_copy(update={"tags": tags})
    try:
        yield
    finally:
        plc.config = original


def oven_only(plant: SimulatedPlant, oven: OpcuaControllerConfig, state: Path) -> AgentConfig:
    config = config_for(plant, state)
    return config.model_copy(update={"controllers": [oven]})


def reconnects() -> float:
    return float(metrics.RECONNECTS.labels(OVEN)._value.get())


def gaps_on(state: Path, tag_name: str) -> list[Any]:
    return [e for e in spooled(state)
            if e.change_kind is ChangeKind.MONITORING_GAP and e.tag.name == tag_name]


async def test_a_path_that_stops_resolving_is_a_gap_on_that_tag_once(
    plant: SimulatedPlant, oven: OpcuaControllerConfig, tmp_path: Path
) -> None:
    """The agent records a monitoring gap on the tag (not a silent hole), once while it stays
    unresolved across reconnects, and watches it again when a later session resolves it."""
    plc = plant.plc(OVEN)
    assert isinstance(plc, OpcUaPLC)
    config = oven_only(plant, by_path(oven.model_copy(update={"monitoring_gap_min_s": 60.0})),
                       tmp_path)
    async with running(config) as agent:
        watcher = agent.watchers[OVEN]
        with renamed_folder(plc):
            await plc.restart(renumber=True)
            await wait_until(lambda: gaps_on(tmp_path, "temperature_sp"), "a gap on the tag")
            restarts, connects = plc.restarts, reconnects()
            plc.drop_connections()  # a reconnect: still unresolved, not reported again
            await wait_until(lambda: reconnects() > connects and watcher.up, "the reconnect")
            # the measurement in the folder does not resolve either (it is no gap: never a change)
            assert watcher._unresolved.keys() == {"temperature_sp", "dwell_time_sp",
                                                  "temperature_actual"}
        await plc.restart(renumber=True)  # Zone1 is back
        await wait_until(lambda: plc.restarts == restarts + 1 and watcher.up
                         and not watcher._unresolved, "the path to resolve again")
        value = float(await plc.read("temperature_sp")) + 2.0
        await plant.write(OVEN, "temperature_sp", value, actor="unknown")
        await wait_until(lambda: any(e.tag.name == "temperature_sp" and e.new_value == value
                                     for e in spooled(tmp_path)), "the change after it")
    (gap,) = gaps_on(tmp_path, "temperature_sp")
    assert gap.verdict is Verdict.UNAPPROVED and gap.gap is not None
    assert gap.tag.critical_to_quality and gap.controller.validated
    assert gap.tag.address == "/Objects/Oven/Zone1/TemperatureSP"
    assert "not watched: browse path /Objects/Oven/Zone1/TemperatureSP no longer resolves" in (
        gap.verdict_reason)
    assert {e.tag.name for e in spooled(tmp_path)
            if e.change_kind is ChangeKind.MONITORING_GAP} == {"temperature_sp", "dwell_time_sp"}
