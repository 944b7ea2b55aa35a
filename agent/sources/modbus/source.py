"""Modbus TCP source: polls one controller with its compiled read plan, read only.

One `ModbusSource` owns one `ModbusTransport` (the connection: client, lock, pacing, backoff).
Each scan sends the plan's requests one at a time and decodes the answers with decoders
compiled once at start-up; a request the device refused (wrong address) is not sent again,
and a scan that missed any request is reported incomplete. The connection is re-made with
capped backoff and each outage is logged once. There is no write path here.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from agent import metrics
from agent.contract import TagValue
from agent.errors import TagConfigError
from agent.runtime.cancel import raise_if_cancel_swallowed
from agent.runtime.outage import OutageLog
from agent.sources.base import (
    Connected,
    Disconnected,
    Emit,
    Reading,
    Readings,
    utcnow,
)
from agent.sources.modbus.config import ModbusControllerConfig
from agent.sources.modbus.decode import compile_request
from agent.sources.modbus.plan import RawValues, ReadRequest, plan_reads
from agent.sources.modbus.transport import CONNECTION_ERRORS, ModbusTransport

log = logging.getLogger(__name__)


class ModbusSource:
    """Polls a Modbus TCP controller; see `agent.sources.base.Source`."""

    def __init__(self, config: ModbusControllerConfig) -> None:
        self.config = config
        self.controller_id = config.id
        self.plan: list[ReadRequest] = plan_reads(config.tags, max_gap=config.max_gap)
        self._decoders = [compile_request(request) for request in self.plan]
        #: Per plan index, the last raw answer and its readings: setpoints rarely change, so
        #: an unchanged answer reuses them and the watcher compares the very same objects.
        self._last: list[tuple[RawValues, dict[str, Reading]] | None] = [None] * len(self.plan)
        self._refused: set[int] = set()  # plan indexes the device refused (illegal address)
        self.transport = ModbusTransport(config)
        where = f"Modbus controller {config.id} at {config.endpoint}"
        self._outage = OutageLog(
            log, f"{where} unreachable (retrying quietly)", f"{where} reachable again"
        )
        metrics.TAGS_MONITORED.labels(config.id).set(len(config.tags))

    async def run(self, emit: Emit) -> None:
        transport = self.transport
        while True:
            raise_if_cancel_swallowed()
            connected = False
            try:
                await transport.connect()
                connected = True
                self._outage.success()
                metrics.RECONNECTS.labels(self.controller_id).inc()
                await emit(Connected(utcnow(), session=self.config.endpoint))
                transport.reset_backoff()
                await self._poll(emit)
            except CONNECTION_ERRORS as exc:
                self._outage.failure(str(exc) or type(exc).__name__)
                metrics.CONTROLLER_UP.labels(self.controller_id).set(0)
                if connected:
                    await emit(Disconnected(utcnow(), reason=str(exc) or type(exc).__name__))
            finally:
                transport.close()
            await transport.wait_to_reconnect()

    async def _poll(self, emit: Emit) -> None:
        interval = self.config.poll_interval_s
        read_seconds = metrics.READ_SECONDS.labels(self.controller_id)
        deadline = time.monotonic()
        while True:
            raise_if_cancel_swallowed()
            started = time.monotonic()
            values, complete = await self.scan()
            read_seconds.observe(time.monotonic() - started)
            if complete:
                metrics.CONTROLLER_UP.labels(self.controller_id).set(1)
                metrics.LAST_GOOD_READ.labels(self.controller_id).set(time.time())
            await emit(Readings(utcnow(), values, complete=complete))
            deadline = _next_deadline(deadline, interval, time.monotonic())
            await asyncio.sleep(deadline - time.monotonic())

    async def scan(self) -> tuple[dict[str, Reading], bool]:
        """Read every request of the plan once; a busy device makes the scan incomplete."""
        values: dict[str, Reading] = {}
        complete = True
        for index, request in enumerate(self.plan):
            if index in self._refused:
                complete = False
                continue
            raw = await self._read(index, request)
            if raw is None:
                complete = False
                continue
            values.update(self._readings(index, raw))
        return values, complete

    def _readings(self, index: int, raw: RawValues) -> dict[str, Reading]:
        """The readings of one answer; those whose value did not change are the last ones."""
        last = self._last[index]
        if last is not None and last[0] == raw:
            return last[1]
        previous = last[1] if last is not None else {}
        readings: dict[str, Reading] = {}
        for name, value in self._decoders[index](raw).items():
            old = previous.get(name)
            readings[name] = old if old is not None and _same(old.value, value) else Reading(value)
        self._last[index] = (raw, readings)
        return readings

    async def _read(self, index: int, request: ReadRequest) -> RawValues | None:
        try:
            return await self.transport.read(request, paced=index > 0)
        except TagConfigError as exc:
            self._refused.add(index)
            log.error("%s", exc)
            return None


def _next_deadline(deadline: float, interval: float, now: float) -> float:
    """The next scan's start on a fixed schedule, so the loop's own lag never adds up.

    A scan that overran its slot is followed at once, and the schedule restarts from
    there instead of bursting to catch up the slots it missed.
    """
    deadline += interval
    return deadline if deadline > now else now


def _same(old: TagValue, new: TagValue) -> bool:
    """True when `new` is indistinguishable from `old` (so 0.0 is not -0.0, NaN never same)."""
    if type(old) is not type(new) or old != new:
        return False
    if isinstance(new, float) and new == 0.0:
        return math.copysign(1.0, old) == math.copysign(1.0, new)  # type: ignore[arg-type]
    return True
