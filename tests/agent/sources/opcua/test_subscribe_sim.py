"""The subscribing and polling OPC UA sources against the simulated oven PLC."""

from __future__ import annotations

import pytest

from agent.config import OpcuaControllerConfig
from agent.sources.base import Alive, Connected, Disconnected, Readings
from agent.sources.opcua import OpcuaSource
from simulators.opcua_plc import OpcUaPLC
from simulators.runtime import SimulatedPlant
from tests.agent.sources.opcua.conftest import OVEN
from tests.agent.sources.running import Recorder, changes, is_complete

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def test_first_a_full_read_then_changes_with_actor_and_source_time(
    plant: SimulatedPlant, oven: OpcuaControllerConfig
) -> None:
    async with Recorder(OpcuaSource(oven)) as rec:
        i, connected = await rec.next(lambda e: isinstance(e, Connected))
        assert isinstance(connected, Connected) and connected.session.startswith("server-start:")
        i, first = await rec.next(lambda e: isinstance(e, Readings), after=i)
        assert isinstance(first, Readings) and first.complete
        assert set(first.values) == {t.name for t in oven.tags}
        assert first.values["recipe_id"].value == await plant.read(OVEN, "recipe_id")
        await plant.write(OVEN, "temperature_sp", 215.5, actor="j.doe")
        _, change = await rec.next(changes("temperature_sp", 215.5), after=i + 1)
    assert isinstance(change, Readings)
    assert change.actors == {"temperature_sp": "j.doe"}
    ts = change.values["temperature_sp"].source_ts
    initial_ts = first.values["temperature_sp"].source_ts
    assert ts is not None and initial_ts is not None and ts > initial_ts  # the PLC's own time
    assert [e for e in rec.events if is_complete(e)] == [first], "one full read per session"


async def test_each_write_carries_its_own_actor(
    plant: SimulatedPlant, oven: OpcuaControllerConfig
) -> None:
    async with Recorder(OpcuaSource(oven)) as rec:
        i, _ = await rec.next(is_complete)
        await plant.write(OVEN, "recipe_id", "R-200", actor="a.smith")
        await plant.write(OVEN, "dwell_time_sp", 45.0, actor="b.jones")
        _, recipe = await rec.next(changes("recipe_id", "R-200"), after=i)
        _, dwell = await rec.next(changes("dwell_time_sp", 45.0), after=i)
    assert isinstance(recipe, Readings) and isinstance(dwell, Readings)
    assert recipe.actors["recipe_id"] == "a.smith"
    assert dwell.actors["dwell_time_sp"] == "b.jones"


async def test_a_change_without_audit_event_has_no_actor(
    plant: SimulatedPlant, oven: OpcuaControllerConfig
) -> None:
    async with Recorder(OpcuaSource(oven)) as rec:
        i, _ = await rec.next(is_complete)
        await plant.write_process(OVEN, "lot_id", "LOT-0002")  # the PLC's own logic: no audit
        _, lot = await rec.next(changes("lot_id", "LOT-0002"), after=i)
    assert isinstance(lot, Readings) and lot.actors == {}


async def test_audit_events_off_still_delivers_changes(
    plant: SimulatedPlant, oven: OpcuaControllerConfig
) -> None:
    config = oven.model_copy(update={"audit_events": False})
    async with Recorder(OpcuaSource(config)) as rec:
        i, _ = await rec.next(is_complete)
        await plant.write(OVEN, "mode", "MANUAL", actor="j.doe")
        _, mode = await rec.next(changes("mode", "MANUAL"), after=i)
    assert isinstance(mode, Readings) and mode.actors == {}


async def test_deadband_hides_noise_below_it(
    plant: SimulatedPlant, oven: OpcuaControllerConfig
) -> None:
    tags = [t.model_copy(update={"deadband": 1.0}) if t.name == "temperature_sp" else t
            for t in oven.tags]
    base = float(await plant.read(OVEN, "temperature_sp"))
    marker = int(await plant.read(OVEN, "recipe_version")) + 1
    async with Recorder(OpcuaSource(oven.model_copy(update={"tags": tags}))) as rec:
        i, _ = await rec.next(is_complete)
        await plant.write(OVEN, "temperature_sp", base + 0.5, actor="noise")  # below the deadband
        await plant.write(OVEN, "recipe_version", marker, actor="marker")
        j, _ = await rec.next(changes("recipe_version", marker), after=i)
        await plant.write(OVEN, "temperature_sp", base + 5.0, actor="j.doe")  # above it
        await rec.next(changes("temperature_sp", base + 5.0), after=j)
    seen = [e.values["temperature_sp"].value for e in rec.events[i + 1 :]
            if isinstance(e, Readings) and "temperature_sp" in e.values]
    assert base + 0.5 not in seen


async def test_reconnect_after_restart_sees_new_session_and_renumbered_namespace(
    plant: SimulatedPlant, oven: OpcuaControllerConfig
) -> None:
    plc = plant.plc(OVEN)
    assert isinstance(plc, OpcUaPLC)
    async with Recorder(OpcuaSource(oven)) as rec:
        i, first = await rec.next(lambda e: isinstance(e, Connected))
        i, _ = await rec.next(is_complete, after=i)
        old_index = plc.namespace_index
        await plc.stop()
        i, _ = await rec.next(lambda e: isinstance(e, Disconnected), after=i)
        plc.set_stored("temperature_sp", 250.0)  # changed while nobody could see
        await plc.restart(renumber=True)
        assert plc.namespace_index != old_index
        i, second = await rec.next(lambda e: isinstance(e, Connected), after=i)
        i, full = await rec.next(is_complete, after=i)
        await plant.write(OVEN, "mode", "MAINT", actor="c.lee")
        _, mode = await rec.next(changes("mode", "MAINT"), after=i)
    assert isinstance(first, Connected) and isinstance(second, Connected)
    assert second.session != first.session
    assert isinstance(full, Readings) and full.values["temperature_sp"].value == 250.0
    assert isinstance(mode, Readings) and mode.actors == {"mode": "c.lee"}


async def test_polling_mode_reads_every_interval(
    plant: SimulatedPlant, oven: OpcuaControllerConfig
) -> None:
    config = oven.model_copy(update={"mode": "poll", "max_nodes_per_read": 2})
    async with Recorder(OpcuaSource(config)) as rec:
        i, _ = await rec.next(is_complete)
        await plant.write(OVEN, "temperature_sp", 190.0, actor="j.doe")
        _, later = await rec.next(
            lambda e: is_complete(e) and isinstance(e, Readings)
            and e.values["temperature_sp"].value == 190.0, after=i + 1)
    assert isinstance(later, Readings) and later.values["temperature_sp"].source_ts is not None
    assert all(e.complete for e in rec.events if isinstance(e, Readings))


async def test_no_write_ever_reached_the_plc(plant: SimulatedPlant) -> None:
    """Runs last in this module: every source above, in both modes, only read."""
    assert plant.foreign_writes(OVEN) == 0


async def test_a_quiet_subscription_reports_keep_alives(
    plant: SimulatedPlant, oven: OpcuaControllerConfig
) -> None:
    """Nothing changes: the server's keep-alives (asked for about every second, not asyncua's
    45 minutes) come as `Alive`, each later than the last, so a gap would start there."""
    async with Recorder(OpcuaSource(oven)) as rec:
        i, first = await rec.next(is_complete)
        _, alive = await rec.next(lambda e: isinstance(e, Alive), after=i)
        j = rec.events.index(alive)
        _, later = await rec.next(lambda e: isinstance(e, Alive), after=j + 1)
    assert isinstance(first, Readings) and isinstance(alive, Alive) and isinstance(later, Alive)
    assert first.at <= alive.at < later.at
