"""The whole agent, in process, against the real simulated plant: what lands in its spool.

No broker runs here: the publisher retries quietly and every detected event stays in the
durable spool, which is exactly where "detected" is defined. The simulators' write counters
prove that the agent never wrote to a controller.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from agent.config import AgentConfig, ModbusControllerConfig, load_agent_config
from agent.contract import SuspectChange
from agent.runner import Agent
from agent.spool import Spool
from simulators.broker import free_port
from simulators.runtime import SimulatedPlant

CONFIG = Path(__file__).parents[2] / "config"

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]
CONTROLLERS = ("press-01", "press-02", "oven-01")


def config_for(plant: SimulatedPlant, state: Path) -> AgentConfig:
    config = load_agent_config(CONFIG / "agent.yaml")
    controllers = []
    for ctl in config.controllers:
        update: dict[str, Any] = {"poll_interval_s": 0.1, "monitoring_gap_min_s": 0.5}
        if isinstance(ctl, ModbusControllerConfig):
            update["port"] = plant.port(ctl.id)
        else:
            update["endpoint"] = plant.endpoint(ctl.id)
        controllers.append(ctl.model_copy(update=update))
    unused = f"127.0.0.1:{free_port()}"  # nothing listens: events stay in the spool
    return config.model_copy(
        update={
            "controllers": controllers,
            "agent": config.agent.model_copy(update={"state_dir": state}),
            "kafka": config.kafka.model_copy(
                update={"bootstrap_servers": unused, "create_topics": False}
            ),
            "metrics": config.metrics.model_copy(update={"port": 0}),
            # No broker: the uses of single-use approvals cannot be read back from Kafka, so
            # the local state alone keeps them (tests/approvals/test_used_on_kafka.py: with).
            "approvals": config.approvals.model_copy(update={"record_uses_on_kafka": False}),
        }
    )


@contextlib.asynccontextmanager
async def running(config: AgentConfig) -> AsyncIterator[Agent]:
    agent = Agent(config)
    task = asyncio.create_task(agent.run())
    try:
        await wait_until(
            lambda: (config.agent.state_dir / "ready").exists(), "the agent to be ready"
        )
        yield agent
    finally:
        agent.stop()
        await asyncio.wait_for(task, 15)


async def wait_until(predicate: Any, what: str, timeout: float = 45.0) -> None:
    """Poll ``predicate`` until it holds. The bound is generous: a loaded CI machine once took
    over 15 s for an agent restart (connect, subscribe, first scan) that takes 3 s here."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {timeout} s: {what}") from None


def spooled(state: Path) -> list[SuspectChange]:
    from agent.kafka.settings import TopicNames

    spool = Spool(state / "spool.db", topics=TopicNames())
    try:
        return [SuspectChange.model_validate(orjson.loads(v)) for _, _, _, v in spool.peek(10_000)]
    finally:
        spool.close()


def summary(events: list[SuspectChange]) -> list[tuple[str, str, str, str]]:
    return [(e.controller.id, e.tag.name, e.change_kind.value, e.verdict.value) for e in events]


async def test_changes_get_verdicts_and_context(plant: SimulatedPlant, tmp_path: Path) -> None:
    config = config_for(plant, tmp_path)
    async with running(config) as agent:
        await plant.write("press-01", "temperature_sp", 185.0, actor="j.doe")
        await plant.write("oven-01", "temperature_sp", 230.0, actor="unknown")
        await wait_until(lambda: agent.spool.depth() >= 2, "two events in the spool")
    events = spooled(tmp_path)
    assert sorted(summary(events)) == sorted(
        [
            ("press-01", "temperature_sp", "setpoint_change", "authorized"),
            ("oven-01", "temperature_sp", "setpoint_change", "unapproved"),
        ]
    )
    by_controller = {e.controller.id: e for e in events}
    assert by_controller["press-01"].approval is not None
    assert by_controller["press-01"].approval.id == "CR-2026-0001"
    oven = by_controller["oven-01"]
    assert (oven.old_value, oven.new_value, oven.tag.critical_to_quality) == (200.0, 230.0, True)
    assert oven.context.get("lot") and oven.context.get("recipe") == "R-100"
    assert [e.seq for e in sorted(events, key=lambda e: e.seq)] == [1, 2]


async def test_recipe_switch_and_edit_are_one_event_each(
    plant: SimulatedPlant, tmp_path: Path
) -> None:
    async with running(config_for(plant, tmp_path)) as agent:
        await plant.write("oven-01", "recipe_id", "R-200", actor="unknown")
        await plant.write("oven-01", "recipe_version", 4, actor="unknown")
        await wait_until(lambda: agent.spool.depth() >= 1, "the recipe switch")
        await asyncio.sleep(0.5)  # both writes may land in one scan or two
        before = agent.spool.depth()
        await plant.write("oven-01", "recipe_temperature", 215.0, actor="unknown")
        await wait_until(lambda: agent.spool.depth() > before, "the recipe edit")
    events = [e for e in spooled(tmp_path) if e.tag.name == "active_recipe"]
    switch, edit = events[0], events[-1]
    assert switch.change_kind.value == "recipe_switch"
    assert (switch.old_value["id"], switch.new_value["id"]) == ("R-100", "R-200")  # type: ignore[index]
    assert edit.change_kind.value == "recipe_edit"
    assert edit.new_value["parameters"]["recipe_temperature"] == 215.0  # type: ignore[index]
    assert edit.old_value["hash"] != edit.new_value["hash"]  # type: ignore[index]
    assert not [e for e in spooled(tmp_path) if e.tag.name.startswith("recipe_")]


async def test_change_while_agent_down_is_found_with_the_gap(
    plant: SimulatedPlant, tmp_path: Path
) -> None:
    config = config_for(plant, tmp_path)
    async with running(config):
        pass
    await plant.write("press-02", "force_sp", 300.5, actor="unknown")
    await asyncio.sleep(0.6)  # longer than monitoring_gap_min_s
    async with running(config) as agent:
        await wait_until(lambda: agent.spool.depth() >= 4, "the unwatched change and the gaps")
    events = spooled(tmp_path)
    unwatched = [e for e in events if e.change_kind.value == "changed_while_unwatched"]
    assert [(e.controller.id, e.tag.name, e.old_value, e.new_value) for e in unwatched] == [
        ("press-02", "force_sp", pytest.approx(250.25), pytest.approx(300.5))
    ]
    gaps = [e for e in events if e.change_kind.value == "monitoring_gap"]
    assert sorted(e.controller.id for e in gaps) == sorted(CONTROLLERS)
    assert all(e.gap is not None and e.gap.end > e.gap.start for e in gaps)


async def test_changed_and_changed_back_raise_two_events(
    plant: SimulatedPlant, tmp_path: Path
) -> None:
    async with running(config_for(plant, tmp_path)) as agent:
        await plant.write("press-01", "speed_sp", 1500, actor="unknown")
        await wait_until(lambda: agent.spool.depth() >= 1, "the change")
        await plant.write("press-01", "speed_sp", 1200, actor="unknown")
        await wait_until(lambda: agent.spool.depth() >= 2, "the change back")
    assert [(e.old_value, e.new_value) for e in spooled(tmp_path)] == [(1200, 1500), (1500, 1200)]


async def test_metrics_endpoint_reports_controllers_and_changes(
    plant: SimulatedPlant, tmp_path: Path
) -> None:
    import urllib.request

    config = config_for(plant, tmp_path)
    port = free_port()
    config = config.model_copy(update={"metrics": config.metrics.model_copy(update={"port": port})})
    async with running(config) as agent:
        await plant.write("oven-01", "dwell_time_sp", 45.0, actor="unknown")
        await wait_until(lambda: agent.spool.depth() >= 1, "the change")
        body = await asyncio.to_thread(
            lambda: (
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
                .read()
                .decode()
            )
        )
    assert 'otwatch_agent_controller_up{controller="oven-01"} 1.0' in body
    assert 'otwatch_agent_changes_total{kind="setpoint_change",verdict="unapproved"}' in body
    assert "otwatch_agent_spool_depth" in body
    assert 'otwatch_agent_tags_monitored{controller="press-01"} 11.0' in body
