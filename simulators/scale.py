"""The scale plant: many controllers and tens of thousands of tags, generated, not hand-written.

``scale_plant`` is pure and deterministic, so a benchmark's agent config can be generated from the
same numbers. ``shard`` splits a plant across processes (controller ``n`` goes to shard
``n % count``), because one Python process saturates one core long before 50,000 tags change.

Example::

    plant = scale_plant(modbus=100, opcua=10, tags=50_000)
    part = shard(plant, index=0, count=4)      # what `otwatch-sim run --shard 0/4` serves
"""

from __future__ import annotations

from typing import Any

from simulators.errors import PlantConfigError
from simulators.plant import PlantConfig

MODBUS_SHARE = 0.4  # 40 % of the tags in Modbus registers, 60 % in OPC UA variables
FOLDER_SIZE = 100  # variables per OPC UA folder (asyncua is quadratic under one parent)
_MODBUS_TYPES = [("int16", 1, 10.0), ("uint16", 1, 1.0), ("int32", 2, 100.0), ("float32", 2, 1.0)]


def _modbus_tags(count: int) -> list[dict[str, Any]]:
    tags, address = [], 0
    for n in range(count):
        kind, width, scale = _MODBUS_TYPES[n % len(_MODBUS_TYPES)]
        tags.append(
            {
                "name": f"sp_{n:04d}",
                "address": address,
                "type": kind,
                "scale": scale,
                "word_order": "little" if n % 8 == 3 else "big",
                "initial": float(n % 500),
            }
        )
        address += width
    return tags


def _opcua_tags(count: int) -> list[dict[str, Any]]:
    return [
        {
            "name": f"sp_{n:05d}",
            "node": f"Cell.Unit{n // FOLDER_SIZE:03d}.SP{n % FOLDER_SIZE:03d}",
            "type": "Double",
            "initial": float(n % 1000),
        }
        for n in range(count)
    ]


def _spread(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` counts that differ by at most one."""
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


def scale_plant(modbus: int = 100, opcua: int = 10, tags: int = 50_000) -> PlantConfig:
    """A plant with ``modbus`` + ``opcua`` controllers and ``tags`` tags, on free ports."""
    if modbus < 0 or opcua < 0 or modbus + opcua == 0 or tags < modbus + opcua:
        raise PlantConfigError(
            f"scale plant: need at least one controller and one tag each, got modbus={modbus}"
            f" opcua={opcua} tags={tags} (fix: raise tags or the controller counts)"
        )
    modbus_total = round(tags * MODBUS_SHARE) if opcua else tags
    modbus_total = modbus_total if modbus else 0
    controllers: list[dict[str, Any]] = [
        {"id": f"plc-{n:03d}", "protocol": "modbus", "port": 0, "tags": _modbus_tags(count)}
        for n, count in enumerate(_spread(modbus_total, modbus) if modbus else [])
    ]
    controllers += [
        {
            "id": f"opc-{n:02d}",
            "protocol": "opcua",
            "port": 0,
            "namespace_uri": f"urn:otwatch:sim:opc-{n:02d}",
            "tags": _opcua_tags(count),
        }
        for n, count in enumerate(_spread(tags - modbus_total, opcua) if opcua else [])
    ]
    return PlantConfig.model_validate(
        {"site": "scale", "lines": [{"id": "line-scale", "controllers": controllers}]}
    )


def shard(plant: PlantConfig, index: int, count: int) -> PlantConfig:
    """The controllers of shard ``index`` of ``count`` (lots schedules referring elsewhere drop)."""
    if count < 1 or not 0 <= index < count:
        raise PlantConfigError(f"--shard {index}/{count}: need 0 <= index < count (e.g. 0/4)")
    order = {c.id: n for n, c in enumerate(plant.controllers())}
    lines = []
    for line in plant.lines:
        mine = [c for c in line.controllers if order[c.id] % count == index]
        if not mine:
            continue
        ids = {c.id for c in mine}
        lots = line.lots
        if lots is not None and any(
            r.controller not in ids for r in [*lots.lot_tags, *lots.counter_tags, *lots.recipe_tags]
        ):
            lots = None
        lines.append(line.model_copy(update={"controllers": mine, "lots": lots}))
    return plant.model_copy(update={"lines": lines})


def plant_to_dict(plant: PlantConfig) -> dict[str, Any]:
    """The plant as plain data for ``yaml.safe_dump`` (enums as their values, defaults left out)."""
    return plant.model_dump(mode="json", exclude_defaults=True)
