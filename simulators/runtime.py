"""The running plant: every controller of a ``PlantConfig`` served on loopback.

Example::

    async with SimulatedPlant(load_plant("config/plant.yaml"), ports={"press-01": 0}) as plant:
        plant.endpoint("press-01")                      # "127.0.0.1:40123"
        await plant.write("press-01", "temperature_sp", 185.0, actor="j.doe")
        assert plant.foreign_writes("press-01") == 0    # scenario writes are not foreign

Port 0 (in the file or in ``ports``) picks a free port at start-up; a restart keeps the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

from simulators.errors import SimulatorError, UnknownTagError
from simulators.modbus_plc import ModbusPLC
from simulators.opcua_plc import OpcUaPLC
from simulators.plant import ModbusController, PlantConfig, Scalar
from simulators.process import run_lots, run_measurements

log = logging.getLogger(__name__)

PLC = ModbusPLC | OpcUaPLC


@dataclass(frozen=True)
class WriteRecord:
    """One scenario-side write, as the plant saw it."""

    time: datetime
    controller: str
    tag: str
    old_value: Scalar
    new_value: Scalar
    actor: str


class SimulatedPlant:
    """All controllers of a plant; an async context manager that starts and stops them."""

    def __init__(
        self,
        config: PlantConfig,
        ports: Mapping[str, int] | None = None,
        *,
        process: bool = True,
        process_speed: float = 1.0,
    ) -> None:
        overrides = dict(ports or {})
        unknown = sorted(set(overrides) - {c.id for c in config.controllers()})
        if unknown:
            raise UnknownTagError(f"ports names controllers the plant does not have: {unknown}")
        self.config = config
        self.history: list[WriteRecord] = []
        self._process = process
        self._process_speed = process_speed
        self._tasks: list[asyncio.Task[None]] = []
        self._plcs: dict[str, PLC] = {}
        for ctrl in config.controllers():
            port = overrides.get(ctrl.id, ctrl.port)  # 0: a free port, picked at bind time
            self._plcs[ctrl.id] = (
                ModbusPLC(ctrl, port)
                if isinstance(ctrl, ModbusController)
                else OpcUaPLC(ctrl, port)
            )

    async def __aenter__(self) -> SimulatedPlant:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start every controller (concurrently) and the process model of each line."""
        try:
            await asyncio.gather(*(plc.start() for plc in self._plcs.values()))
        except BaseException:
            await self.stop()
            raise
        if self._process:
            for line in self.config.lines:
                if line.lots is not None:
                    coro = run_lots(self, line.id, line.lots, self._process_speed)
                    self._tasks.append(asyncio.create_task(coro, name=f"lots-{line.id}"))
            measurements = self.config.measurements()
            if measurements:
                coro = run_measurements(self, measurements, self._process_speed)
                self._tasks.append(asyncio.create_task(coro, name="measurements"))

    async def stop(self) -> None:
        """Cancel the process model and stop every controller; safe to call twice."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for plc in self._plcs.values():
            try:
                await plc.stop()
            except Exception:
                log.exception("controller %s did not stop cleanly", plc.config.id)

    async def reset(self) -> None:
        """Every controller running again with its initial values, no faults, zero counters.

        Lets one plant serve several scenario runs (tests, benchmarks) without a slow restart;
        the OPC UA namespace index keeps any renumbering from earlier restarts.
        """
        for plc in self._plcs.values():
            if not plc.running:
                await plc.start()
            await plc.reset()
        self.history.clear()

    def plc(self, controller: str) -> PLC:
        """The simulated controller itself (faults, restarts, namespace index)."""
        try:
            return self._plcs[controller]
        except KeyError:
            raise UnknownTagError(f"the plant has no controller {controller!r}") from None

    def controllers(self) -> list[str]:
        return list(self._plcs)

    def endpoint(self, controller: str) -> str:
        """``127.0.0.1:<port>`` (Modbus) or ``opc.tcp://127.0.0.1:<port>/otwatch/<id>`` (OPC UA)."""
        return self.plc(controller).endpoint

    def port(self, controller: str) -> int:
        return self.plc(controller).port

    def ports(self) -> dict[str, int]:
        return {cid: plc.port for cid, plc in self._plcs.items()}

    def namespace_uri(self, controller: str) -> str:
        plc = self.plc(controller)
        if not isinstance(plc, OpcUaPLC):
            raise UnknownTagError(f"controller {controller!r} is Modbus; it has no namespace")
        return plc.namespace_uri

    def foreign_writes(self, controller: str) -> int:
        """Write requests received from any client (never the scenario or the process model)."""
        return self.plc(controller).foreign_writes

    async def read(self, controller: str, tag: str) -> Scalar:
        """The tag's value in engineering units."""
        return await self.plc(controller).read(tag)

    async def write(
        self, controller: str, tag: str, value: Scalar, actor: str = "scenario"
    ) -> None:
        """A scenario-side write in engineering units; OPC UA raises an audit event for actor."""
        plc = self.plc(controller)
        old = await plc.read(tag)
        if isinstance(plc, OpcUaPLC):
            await plc.write(tag, value, actor=actor)
        else:
            await plc.write(tag, value)
        new = await plc.read(tag)
        self.history.append(WriteRecord(datetime.now(UTC), controller, tag, old, new, actor))

    async def write_process(self, controller: str, tag: str, value: Scalar) -> None:
        """A write by the PLC's own logic (lots advancing): no audit event, no history entry."""
        plc = self.plc(controller)
        if not plc.running:
            raise SimulatorError(f"controller {controller!r} is down")
        if isinstance(plc, OpcUaPLC):
            await plc.write(tag, value, audit=False)
        else:
            await plc.write(tag, value)
