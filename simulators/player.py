"""Playing a scenario against a running ``SimulatedPlant`` and writing its ground truth.

Each action is applied at ``at / speed`` seconds after the start; one label per action is appended
to the labels file (and flushed) as soon as the action is done, so a watcher can follow along.
When an action overruns (a restart whose server is slow to come back on a loaded machine), the
rest of the timeline slips: an action never starts sooner after the one before it than the
scenario's gap between them. Firing the overdue actions back to back would make a setpoint
that lives 3 s in the scenario live a fraction of a millisecond, which no poll could see.
Faults with a ``duration_s`` are cleared by owned tasks that ``play`` awaits before it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from simulators.approvals import approval_id, approval_records, write_approvals
from simulators.errors import ScenarioError
from simulators.modbus_plc import ModbusFaults, ModbusPLC
from simulators.opcua_plc import OpcUaPLC
from simulators.plant import Scalar
from simulators.runtime import SimulatedPlant
from simulators.scenario_model import (
    WRITING,
    Action,
    ActionKind,
    Label,
    Scenario,
    check_against,
    resolve_restores,
)

Clock = Callable[[], datetime]
DOWNLOAD_SETTLE_S = 0.5  # between the new checksum and the restart of a program download


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def _current_values(
    plant: SimulatedPlant, scenario: Scenario
) -> dict[tuple[str, str], Scalar]:
    keys = {(a.controller, a.tag) for a in scenario.actions if a.tag is not None}
    return {(c, t): await plant.read(c, t) for c, t in sorted(keys)}


def _modbus(plant: SimulatedPlant, action: Action) -> ModbusPLC:
    plc = plant.plc(action.controller)
    if not isinstance(plc, ModbusPLC):
        raise ScenarioError(f"{action.action.value}: {action.controller!r} is not Modbus")
    return plc


async def _clear_later(plc: ModbusPLC, seconds: float) -> None:
    await asyncio.sleep(seconds)
    plc.faults.exception, plc.faults.delay_s = None, 0.0


async def _offline_change(plant: SimulatedPlant, action: Action, speed: float) -> None:
    """Stop the controller, change the tag while nobody can watch, start it again."""
    assert action.tag is not None and action.value is not None
    plc = plant.plc(action.controller)
    await plc.stop()
    plc.set_stored(action.tag, action.value)
    await asyncio.sleep(action.downtime_s / speed)
    await plc.start()


async def _program_download(plant: SimulatedPlant, action: Action, speed: float) -> None:
    """New checksum, then the server restarts (namespaces renumbered) as after a download."""
    assert action.tag is not None and action.value is not None
    plc = plant.plc(action.controller)
    if not isinstance(plc, OpcUaPLC):
        raise ScenarioError(f"program_download: {action.controller!r} is not OPC UA")
    await plant.write(action.controller, action.tag, action.value, actor=action.actor)
    # Let subscribers receive the checksum change and its audit event before the session drops.
    await asyncio.sleep(DOWNLOAD_SETTLE_S / speed)
    await plc.restart(action.downtime_s / speed, renumber=action.renumber)


class _Player:
    def __init__(self, plant: SimulatedPlant, speed: float) -> None:
        self.plant = plant
        self.speed = speed
        self.tasks: list[asyncio.Task[None]] = []

    async def apply(self, action: Action) -> None:
        """Apply one action; value-changing actions go through ``plant.write`` (audited)."""
        plant, kind = self.plant, action.action
        if kind in (ActionKind.CHANGE, ActionKind.RESTORE):
            assert action.tag is not None and action.value is not None
            await plant.write(action.controller, action.tag, action.value, actor=action.actor)
        elif kind is ActionKind.OFFLINE_CHANGE:
            await _offline_change(plant, action, self.speed)
        elif kind is ActionKind.PROGRAM_DOWNLOAD:
            await _program_download(plant, action, self.speed)
        elif kind is ActionKind.DROP_CONNECTIONS:
            plant.plc(action.controller).drop_connections()
        elif kind is ActionKind.RESTART:
            await self._restart(action)
        else:
            self._fault(action)

    async def _restart(self, action: Action) -> None:
        plc = self.plant.plc(action.controller)
        if isinstance(plc, OpcUaPLC):
            await plc.restart(action.downtime_s / self.speed, renumber=action.renumber)
        else:
            await plc.restart(action.downtime_s / self.speed)

    def _fault(self, action: Action) -> None:
        plc = _modbus(self.plant, action)
        if action.action is ActionKind.MODBUS_EXCEPTION:  # on every request, until cleared
            plc.faults = ModbusFaults(exception=action.exception, delay_s=plc.faults.delay_s)
        elif action.action is ActionKind.SLOW_RESPONSES:
            plc.faults.delay_s = action.delay_s / self.speed
        else:
            plc.faults.exception, plc.faults.delay_s = None, 0.0
        if action.duration_s is not None:
            clear = _clear_later(plc, action.duration_s / self.speed)
            self.tasks.append(asyncio.create_task(clear, name=f"clear-{plc.config.id}"))

    async def finish(self) -> None:
        """Wait for the owned fault-clearing tasks (cancel them if the play is cancelled)."""
        try:
            await asyncio.gather(*self.tasks)
        finally:
            for task in self.tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def _label(
    scenario: Scenario,
    seq: int,
    action: Action,
    old: Scalar | None,
    new: Scalar | None,
    span: tuple[datetime, datetime],
) -> Label:
    writes = action.action in WRITING
    verdict = ("authorized" if action.approved else "unapproved") if writes else None
    return Label(
        time=span[1],
        started=span[0],
        scenario=scenario.name,
        seq=seq,
        action=action.action,
        controller=action.controller,
        tag=action.tag,
        old_value=old,
        new_value=new,
        change_kind=action.kind_label,
        expected_verdict=verdict,
        actor=action.actor,
        approval_id=approval_id(scenario, seq) if action.approved else None,
    )


async def _read_or_none(plant: SimulatedPlant, action: Action) -> Scalar | None:
    if action.tag is None or not plant.plc(action.controller).running:
        return None
    return await plant.read(action.controller, action.tag)


async def play(
    plant: SimulatedPlant,
    scenario: Scenario,
    labels_out: Path | None = None,
    approvals_out: Path | None = None,
    speed: float = 1.0,
    *,
    clock: Clock = _utcnow,
) -> list[Label]:
    """Play ``scenario`` on ``plant`` at ``speed`` times real time; returns one label per action.

    ``approvals_out`` is written before the first action, so approved actions really are approved.
    """
    if speed <= 0:
        raise ScenarioError(f"speed must be > 0, got {speed}")
    check_against(plant.config, scenario)
    scenario = resolve_restores(scenario, await _current_values(plant, scenario))
    if approvals_out is not None:
        write_approvals(approvals_out, approval_records(scenario, clock(), plant.config))
    sink: IO[str] | None = labels_out.open("w", encoding="utf-8") if labels_out else None
    player = _Player(plant, speed)
    labels: list[Label] = []
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        previous: tuple[float, float] | None = None  # (its ``at``, when it started)
        for seq, action in enumerate(scenario.timeline(), start=1):
            due = start + action.at / speed
            if previous is not None:
                due = max(due, previous[1] + (action.at - previous[0]) / speed)
            await asyncio.sleep(max(0.0, due - loop.time()))
            old = await _read_or_none(plant, action)
            previous = (action.at, loop.time())
            started = clock()
            await player.apply(action)
            new = await _read_or_none(plant, action)
            label = _label(scenario, seq, action, old, new, (started, clock()))
            labels.append(label)
            if sink is not None:
                sink.write(label.model_dump_json() + "\n")
                sink.flush()
        await player.finish()
    finally:
        if sink is not None:
            sink.close()
    return labels
