"""Shared factories for the source tests: tags, controllers and config files to test with.

    modbus_tag, modbus_controller    a Modbus tag or controller from a few keys
    sample_config, write_config      config/agent.yaml as data, and a changed copy on disk
    on_plant, sample_on_plant        the sample's controllers pointed at the simulated plant

A change to a config class is then one edit here, not one in every test module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml

from agent.config import AgentConfig, load_agent_config
from agent.sources.modbus import ModbusControllerConfig, ModbusTag
from agent.sources.opcua import OpcuaControllerConfig
from simulators.runtime import SimulatedPlant

#: The sample agent config (its controllers match the simulated plant of config/plant.yaml).
SAMPLE = Path(__file__).resolve().parents[3] / "config" / "agent.yaml"

Controller = TypeVar("Controller", ModbusControllerConfig, OpcuaControllerConfig)


def modbus_tag(name: str, address: int, data_type: str = "uint16", **kw: object) -> ModbusTag:
    """A Modbus tag, watched as a setpoint unless ``kind`` says otherwise."""
    kind = kw.pop("kind", "setpoint")
    return ModbusTag.model_validate(
        {"name": name, "address": address, "data_type": data_type, "kind": kind, **kw}
    )


def modbus_controller(*tags: dict[str, Any], **extra: Any) -> ModbusControllerConfig:
    """Controller ``plc-x`` with these tags, each watched as a setpoint unless it says otherwise."""
    return ModbusControllerConfig.model_validate({
        "id": "plc-x", "protocol": "modbus", "tags": [{"kind": "setpoint", **t} for t in tags],
        **extra,
    })


def sample_config() -> dict[str, Any]:
    """config/agent.yaml as data, to change and write with `write_config`."""
    return yaml.safe_load(SAMPLE.read_text())  # type: ignore[no-any-return]


def write_config(tmp_path: Path, data: object) -> Path:
    """``tmp_path/agent.yaml`` holding ``data`` (YAML), or the text itself if it is a string."""
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def on_plant(controller: Controller, plant: SimulatedPlant, **update: Any) -> Controller:
    """A controller of the sample config pointed at the simulated plant, ``update`` applied."""
    if isinstance(controller, ModbusControllerConfig):
        return controller.model_copy(update={"port": plant.port(controller.id), **update})
    return controller.model_copy(update={"endpoint": plant.endpoint(controller.id), **update})


def sample_on_plant(plant: SimulatedPlant, **update: Any) -> AgentConfig:
    """The sample config with every controller pointed at the simulated plant."""
    config = load_agent_config(SAMPLE)
    controllers = [on_plant(ctl, plant, **update) for ctl in config.controllers]
    return config.model_copy(update={"controllers": controllers})


