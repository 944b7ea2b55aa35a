"""Modbus TCP source: polls one controller with its compiled read plan, read only.

One `ModbusSource` owns one client; requests are sent one at a time (pymodbus allows one in
flight per connection), paced by `pacing_ms`, and the connection is re-made with capped
backoff. Only read functions are ever called: there is no write path here.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from agent import metrics
from agent.config import ModbusControllerConfig
from agent.contract import TagValue
from agent.errors import ControllerUnreachable
from agent.runtime.cancel import raise_if_cancel_swallowed
from agent.sources.base import (
    Connected,
    Disconnected,
    Emit,
    OutageLog,
    Reading,
    Readings,
    backoff_delays,
    utcnow,
)
from agent.sources.modbus_plan import RawValues, ReadRequest, compile_request, plan_reads

log = logging.getLogger(__name__)

#: Modbus exception codes: the address is wrong for this device (a config error).
_ADDRESS_ERRORS = {2, 3}

#: The client method that reads each register table.
_READ_METHOD = {
    "holding": "read_holding_registers",
    "input": "read_input_registers",
    "coil": "read_coils",
    "discrete": "read_discrete_inputs",
}


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
        self._reads_ok = metrics.READS.labels(config.id, "ok")  # labels() costs a lookup per call
        self._outage = OutageLog(log, f"Modbus controller {config.id} at {config.endpoint}")
        metrics.TAGS_MONITORED.labels(config.id).set(len(config.tags))

    async def run(self, emit: Emit) -> None:
        next_delay = backoff_delays(0.5, self.config.reconnect_max_s)
        while True:
            raise_if_cancel_swallowed()
            client = AsyncModbusTcpClient(
                self.config.host,
                port=self.config.port,
                timeout=self.config.timeout_s,
                retries=0,
                reconnect_delay=0,
            )
            connected = False
            try:
                if not await client.connect():
                    raise ControllerUnreachable("connection refused", controller=self.controller_id)
                connected = True
                self._outage.recovered()
                metrics.RECONNECTS.labels(self.controller_id).inc()
                await emit(Connected(utcnow(), session=self.config.endpoint))
                next_delay = backoff_delays(0.5, self.config.reconnect_max_s)
                await self._poll(client, emit)
            except (ModbusException, OSError, TimeoutError, ControllerUnreachable) as exc:
                self._outage.failed(str(exc) or type(exc).__name__)
                metrics.CONTROLLER_UP.labels(self.controller_id).set(0)
                if connected:
                    await emit(Disconnected(utcnow(), reason=str(exc) or type(exc).__name__))
            finally:
                client.close()
            await asyncio.sleep(next_delay())

    async def _poll(self, client: AsyncModbusTcpClient, emit: Emit) -> None:
        interval = self.config.poll_interval_s
        read_seconds = metrics.READ_SECONDS.labels(self.controller_id)
        deadline = time.monotonic()
        while True:
            raise_if_cancel_swallowed()
            started = time.monotonic()
            values, complete = await self.scan(client)
            read_seconds.observe(time.monotonic() - started)
            if complete:
                metrics.CONTROLLER_UP.labels(self.controller_id).set(1)
                metrics.LAST_GOOD_READ.labels(self.controller_id).set(time.time())
            await emit(Readings(utcnow(), values, complete=complete))
            deadline = _next_deadline(deadline, interval, time.monotonic())
            await asyncio.sleep(deadline - time.monotonic())

    async def scan(self, client: AsyncModbusTcpClient) -> tuple[dict[str, Reading], bool]:
        """Read every request of the plan once; a busy device makes the scan incomplete."""
        values: dict[str, Reading] = {}
        complete = True
        pacing = self.config.pacing_ms / 1000.0
        for index, request in enumerate(self.plan):
            if index in self._refused:
                complete = False
                continue
            if pacing and index:
                await asyncio.sleep(pacing)
            raw = await self._read(client, index, request)
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

    async def _read(
        self, client: AsyncModbusTcpClient, index: int, request: ReadRequest
    ) -> RawValues | None:
        read = getattr(client, _READ_METHOD[request.table])
        response = await read(request.start, count=request.count, device_id=self.config.device_id)
        if response.isError():
            code = getattr(response, "exception_code", 0)
            metrics.READS.labels(self.controller_id, f"exception_{code}").inc()
            if code in _ADDRESS_ERRORS:
                self._refused.add(index)
                names = ", ".join(t.name for t in request.tags)
                log.error(
                    "controller %s refuses %s %d..%d (tags %s): fix their addresses in the config",
                    self.controller_id, request.table, request.start,
                    request.start + request.count - 1, names,
                )
            return None
        self._reads_ok.inc()
        if request.is_bits:
            return list(response.bits[: request.count])
        return response.registers  # type: ignore[no-any-return]  # a fresh list per response


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
