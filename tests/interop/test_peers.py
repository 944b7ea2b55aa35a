"""The real agent against OPC UA and Modbus servers that otwatch did not write.

node-opcua and jsmodbus (npm) serve layouts of their own (not the simulated plant's), configured
here as an engineer would configure the agent for them, and play a scripted timeline: setpoint
changes, one approved and one not, a recipe switch (a group of tags), a mode change, while a
measurement moves all the time. Every scripted change must be reported once, with the right
verdict; nothing else may be (no change for the measurement, no monitoring gap); the
measurement travels in every event's context and the suspect events' snapshot; and no write may
reach the peers (each counts the write requests it receives; one write by the test itself
proves the counter counts).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from asyncua import Client, ua
from pymodbus.client import AsyncModbusTcpClient

from agent.config import AgentConfig
from agent.contract import SuspectChange, Verdict
from simulators.broker import free_port
from tests.agent.test_agent_detects import running, spooled, wait_until
from tests.interop.peers import Peer, peer

pytestmark = pytest.mark.integration

#: After the timeline: how long anything unexpected gets to show up (several polls and
#: publishing intervals).
QUIET_S = 2.0


def agent_config(state: Path, controller: dict[str, Any], approvals: list[dict[str, Any]]
                 ) -> AgentConfig:
    """An agent with one controller and its approvals; no broker (events stay in the spool)."""
    state.mkdir(parents=True, exist_ok=True)
    file = state / "approvals.yaml"
    window = {"valid_from": "2020-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z",
              "approved_by": "change.control"}
    file.write_text(yaml.safe_dump({"approvals": [{**window, **a} for a in approvals]}))
    return AgentConfig.model_validate({
        "agent": {"id": "interop", "site": "interop", "state_dir": str(state)},
        "kafka": {"bootstrap_servers": f"127.0.0.1:{free_port()}", "create_topics": False},
        "metrics": {"port": 0},
        "approvals": {"files": [str(file)]},
        "controllers": [controller],
    })


def expected_changes(timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One expected event per step, a recipe's steps as one event on the recipe."""
    expected: list[dict[str, Any]] = []
    for step in timeline:
        recipe = step.get("recipe")
        if recipe and expected and expected[-1]["tag"] == recipe:
            expected[-1]["values"][step["tag"]] = step["value"]
            continue
        expected.append({"tag": recipe or step["tag"], "approved": step["approved"],
                         "values": {step["tag"]: step["value"]}})
    return expected


def reported(event: SuspectChange, change: dict[str, Any]) -> bool:
    """Whether the event reports the expected change (a recipe: all its new values)."""
    if event.tag.name != change["tag"]:
        return False
    value = event.new_value
    if isinstance(value, dict):
        seen = {value.get("id"), value.get("version"), *value["parameters"].values()}
        return all(v in seen for v in change["values"].values())
    (new,) = change["values"].values()
    return bool(value == new)


async def play_and_check(running_peer: Peer, config: AgentConfig, measurement: str) -> None:
    """Play the peer's timeline under the agent; check what the agent reported."""
    state = config.agent.state_dir
    expected = expected_changes(running_peer.ready["timeline"])
    async with running(config):
        await running_peer.play()
        await wait_until(
            lambda: all(any(reported(e, c) for e in spooled(state)) for c in expected),
            "every scripted change in the spool",
        )
        await asyncio.sleep(QUIET_S)
    events = sorted(spooled(state), key=lambda e: e.seq)
    assert len(events) == len(expected), [(e.tag.name, e.new_value) for e in events]
    for event, change in zip(events, expected, strict=True):
        assert reported(event, change), (event.tag.name, event.new_value, change)
        assert (event.verdict is Verdict.AUTHORIZED) == change["approved"], (
            event.tag.name, event.verdict, event.verdict_reason)
        assert isinstance(event.context.get(measurement), int | float)
        if event.verdict is not Verdict.AUTHORIZED:
            assert event.snapshot is not None and measurement in event.snapshot.values
    assert await running_peer.writes() == 0, "the agent wrote to a controller"


async def test_node_opcua_server(tmp_path: Path) -> None:
    async with peer("opcua_server.js", str(free_port()), str(tmp_path / "pki"),
                    workdir=tmp_path) as extruder:
        uri = extruder.ready["namespace"]
        node = {name: f"nsu={uri};s={tag['node']}" for name, tag in
                extruder.ready["layout"].items()}
        controller = {
            "id": "extruder-01", "protocol": "opcua", "endpoint": extruder.ready["endpoint"],
            "mode": "subscribe", "publishing_interval_ms": 100, "sampling_interval_ms": 100,
            "tags": [
                {"name": "zone_temperature_sp", "kind": "setpoint",
                 "node": node["zone_temperature_sp"], "critical_to_quality": True},
                # by browse path, as an engineer reads it in a client
                {"name": "screw_speed_sp", "kind": "setpoint", "namespace_uri": uri,
                 "browse_path": "/Objects/Extruder/ScrewSpeedSP"},
                {"name": "zone_temperature", "kind": "measurement", "namespace_uri": uri,
                 "browse_path": "/Objects/Extruder/Zone1/Temperature"},
                {"name": "recipe_id", "kind": "recipe", "node": node["recipe_id"]},
                {"name": "recipe_version", "kind": "recipe", "node": node["recipe_version"]},
                {"name": "melt_temperature", "kind": "recipe", "node": node["melt_temperature"]},
                {"name": "lot", "context": "lot", "node": node["lot"]},
            ],
            "recipes": [{"name": "extruder_recipe", "id_tag": "recipe_id",
                         "version_tag": "recipe_version", "parameter_tags": ["melt_temperature"]}],
        }
        config = agent_config(tmp_path / "agent", controller, [
            {"id": "IOP-1", "controller": "extruder-01", "tag": "zone_temperature_sp",
             "change": "setpoint", "expected": {"exact": 215.0}},
            {"id": "IOP-2", "controller": "extruder-01", "tag": "extruder_recipe",
             "change": "recipe_switch", "expected": {"recipe_id": "R-2", "recipe_version": 3}},
        ])
        await play_and_check(extruder, config, "zone_temperature")
        assert all(e.context.get("lot") == "L-100" for e in spooled(config.agent.state_dir))
        async with Client(extruder.ready["endpoint"]) as client:  # the counter counts
            idx = await client.get_namespace_index(uri)
            target = client.get_node(f"ns={idx};s=Extruder.Lot")
            await target.write_value(ua.DataValue(ua.Variant("L-101", ua.VariantType.String)))
        assert await extruder.writes() == 1


async def test_jsmodbus_server(tmp_path: Path) -> None:
    port = free_port()
    async with peer("modbus_server.js", str(port), workdir=tmp_path) as press:
        controller = {
            "id": "press-iop", "protocol": "modbus", "host": "127.0.0.1", "port": port,
            "device_id": 1, "poll_interval_s": 0.1,
            "tags": [
                {"name": "line_speed_sp", "kind": "setpoint", "address": 0,
                 "data_type": "float32", "word_order": "big", "deadband": 0.001},
                {"name": "zone_temperature_sp", "kind": "setpoint", "address": 2,
                 "data_type": "int16", "scale": 0.1, "critical_to_quality": True},
                {"name": "recipe_no", "kind": "recipe", "address": 10, "data_type": "uint16"},
                {"name": "recipe_pressure", "kind": "recipe", "address": 11,
                 "data_type": "uint16", "scale": 0.1},
                {"name": "recipe_time_ms", "kind": "recipe", "address": 12,
                 "data_type": "uint32", "word_order": "little"},
                {"name": "flow_actual", "kind": "measurement", "address": 20,
                 "data_type": "int16", "scale": 0.01},
                {"name": "run_mode", "kind": "mode", "table": "coil", "address": 0,
                 "data_type": "bool"},
            ],
            "recipes": [{"name": "press_recipe", "id_tag": "recipe_no",
                         "parameter_tags": ["recipe_pressure", "recipe_time_ms"]}],
        }
        config = agent_config(tmp_path / "agent", controller, [
            {"id": "IOP-1", "controller": "press-iop", "tag": "line_speed_sp",
             "change": "setpoint", "expected": {"exact": 14.0}},
            {"id": "IOP-2", "controller": "press-iop", "tag": "press_recipe",
             "change": "recipe_switch", "expected": {"recipe_id": 2}},
        ])
        await play_and_check(press, config, "flow_actual")
        client = AsyncModbusTcpClient("127.0.0.1", port=port)  # the counter counts
        await client.connect()
        try:
            await client.write_register(40, 7, device_id=1)
        finally:
            client.close()
        assert await press.writes() == 1
