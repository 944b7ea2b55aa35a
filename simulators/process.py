"""The process model: lots start on a schedule per line, and the lot tags follow; measurements
(an actual temperature) move toward the setpoint they follow.

``next_lot``, ``next_counter`` and ``next_measurement`` are pure; ``run_lots`` and
``run_measurements`` are the owned background loops that ``SimulatedPlant`` starts. Process
writes are the PLC's own logic, not Write requests, so they raise no audit events and count as
nothing.
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


#: How often measurements move, and how far toward their setpoint each time.
MEASUREMENT_PERIOD_S = 1.0
MEASUREMENT_STEP = 0.3
#: The process never settles exactly: it wobbles around the setpoint by this fraction of it.
MEASUREMENT_WOBBLE = 0.002


def next_measurement(actual: Scalar, target: Scalar, tick: int) -> Scalar:
    """The next actual value: a step toward ``target`` plus a small wobble that alternates
    with ``tick`` (a process value never stands still); non-numbers stay as they are."""
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (actual, target))
    if not numbers:
        return actual
    a, t = float(actual), float(target)
    wobble = MEASUREMENT_WOBBLE * abs(t) * (1 if tick % 2 else -1)
    value = round(a + MEASUREMENT_STEP * (t - a) + wobble, 3)
    return value if isinstance(actual, float) else int(value)


async def run_measurements(
    plant: PlantIO, measurements: list[tuple[str, str, str]], speed: float = 1.0
) -> None:
    """Move every (controller, measurement, followed tag) every period until cancelled."""
    tick = 0
    while True:
        await asyncio.sleep(MEASUREMENT_PERIOD_S / speed)
        tick += 1
        for controller, tag, follows in measurements:
            try:
                actual = await plant.read(controller, tag)
                target = await plant.read(controller, follows)
                await plant.write_process(controller, tag, next_measurement(actual, target, tick))
            except SimulatorError as exc:  # a controller that is down has no process either
                log.debug("%s/%s not moved: %s", controller, tag, exc)


async def run_lots(plant: PlantIO, line: str, schedule: LotSchedule, speed: float = 1.0) -> None:
    """Start a new lot every ``interval_s / speed`` seconds until cancelled."""
    while True:
        await asyncio.sleep(schedule.interval_s / speed)
        try:
            await start_next_lot(plant, schedule)
        except SimulatorError as exc:
            log.debug("line %s: lot not advanced: %s", line, exc)
