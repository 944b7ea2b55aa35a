"""The process model: lots start on a schedule per line, and the lot tags follow.

``next_lot`` and ``next_counter`` are pure; ``run_lots`` is the owned background loop that
``SimulatedPlant`` starts for every line with a ``lots:`` schedule. Process writes are the PLC's
own logic, not Write requests, so they raise no audit events and count as nothing.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Protocol

from simulators.errors import SimulatorError
from simulators.plant import LotSchedule, Scalar

log = logging.getLogger(__name__)


class PlantIO(Protocol):
    async def read(self, controller: str, tag: str) -> Scalar: ...

    async def write_process(self, controller: str, tag: str, value: Scalar) -> None: ...


def next_lot(lot_id: str) -> str:
    """``LOT-0001`` -> ``LOT-0002``: the trailing number advances, keeping its width."""
    match = re.search(r"(\d+)$", lot_id)
    if match is None:
        return f"{lot_id}-0001"
    digits = match.group(1)
    return f"{lot_id[: match.start()]}{int(digits) + 1:0{len(digits)}d}"


def next_counter(value: Scalar) -> int:
    """A numeric lot counter advances by one (booleans and text restart at 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 1
    return int(value) + 1


async def start_next_lot(plant: PlantIO, schedule: LotSchedule) -> None:
    """Advance every lot and counter tag of the line and reload the recipe tags."""
    for ref in schedule.lot_tags:
        current = await plant.read(ref.controller, ref.tag)
        await plant.write_process(ref.controller, ref.tag, next_lot(str(current)))
    for ref in schedule.counter_tags:
        current = await plant.read(ref.controller, ref.tag)
        await plant.write_process(ref.controller, ref.tag, next_counter(current))
    for ref in schedule.recipe_tags:
        current = await plant.read(ref.controller, ref.tag)
        await plant.write_process(ref.controller, ref.tag, current)


async def run_lots(plant: PlantIO, line: str, schedule: LotSchedule, speed: float = 1.0) -> None:
    """Start a new lot every ``interval_s / speed`` seconds until cancelled."""
    while True:
        await asyncio.sleep(schedule.interval_s / speed)
        try:
            await start_next_lot(plant, schedule)
        except SimulatorError as exc:
            log.debug("line %s: lot not advanced: %s", line, exc)
