"""The generated scale plant: exact sizes, sharding, and a small one served for real."""

from __future__ import annotations

from pathlib import Path

import pytest
from asyncua.client.client import Client
from pymodbus.client import AsyncModbusTcpClient

from simulators.cli import main
from simulators.errors import PlantConfigError
from simulators.plant import load_plant
from simulators.runtime import SimulatedPlant
from simulators.scale import scale_plant, shard


def test_the_full_scale_plant_has_the_sizes_the_issue_asks_for() -> None:
    plant = scale_plant(modbus=100, opcua=10, tags=50_000)
    controllers = plant.controllers()
    assert len(controllers) == 110
    assert sum(len(c.tags) for c in controllers) == 50_000
    shards = [shard(plant, n, 4) for n in range(4)]
    assert sorted(c.id for s in shards for c in s.controllers()) == sorted(
        c.id for c in controllers
    )


def test_bad_scale_numbers_are_refused() -> None:
    with pytest.raises(PlantConfigError, match="fix:"):
        scale_plant(modbus=0, opcua=0, tags=10)
    with pytest.raises(PlantConfigError, match="0/4"):
        shard(scale_plant(2, 1, 30), 4, 4)


def test_scale_plant_command_writes_a_loadable_file(tmp_path: Path) -> None:
    out = tmp_path / "scale.yaml"
    assert (
        main(["scale-plant", "--modbus", "3", "--opcua", "1", "--tags", "500", "--out", str(out)])
        == 0
    )
    assert load_plant(out) == scale_plant(3, 1, 500)


@pytest.mark.integration
async def test_a_small_scale_plant_serves_its_tags() -> None:
    plant_config = shard(scale_plant(modbus=4, opcua=2, tags=1_000), 0, 2)
    ports = {c.id: 0 for c in plant_config.controllers()}
    async with SimulatedPlant(plant_config, ports, process=False) as plant:
        assert set(plant.controllers()) == {"plc-000", "plc-002", "opc-00"}
        modbus = AsyncModbusTcpClient("127.0.0.1", port=plant.port("plc-002"), timeout=1)
        await modbus.connect()
        try:
            rr = await modbus.read_holding_registers(0, count=6, device_id=1)
            assert rr.registers[:4] == [0, 1, 0, 200]  # int16 x10, uint16, int32 x100
        finally:
            modbus.close()
        async with Client(plant.endpoint("opc-00")) as client:
            idx = await client.get_namespace_index(plant.namespace_uri("opc-00"))
            nodes = [
                client.get_node(f"ns={idx};s=Cell.Unit{n // 100:03d}.SP{n % 100:03d}")
                for n in range(300)
            ]
            values = await client.read_values(nodes)
            assert values == [float(n) for n in range(300)]
