"""Modbus TCP source: polls one controller with its compiled read plan, read only.

One `ModbusSource` owns one client; requests are sent one at a time (pymodbus allows one in
flight per connection), paced by `pacing_ms`, and the connection is re-made with capped
backoff. Only read functions are ever called: there is no write path here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from agent import metrics
from agent.config import ModbusControllerConfig
from agent.errors import ControllerUnreachable
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
from agent.sources.modbus_plan import ReadRequest, decode_request, plan_reads

log = logging.getLogger(__name__)

#: Modbus exception codes: the address is wrong for this device (a config error).
_ADDRESS_ERRORS = {2, 3}


class ModbusSource:
    """Polls a Modbus TCP controller; see `agent.sources.base.Source`."""

    def __init__(self, config: ModbusControllerConfig) -> None:
        self.config = config
        self.controller_id = config.id
        self.plan: list[ReadRequest] = plan_reads(config.tags, max_gap=config.max_gap)
        self._refused: set[int] = set()  # plan indexes the device refused (illegal address)
        self._outage = OutageLog(log, f"Modbus controller {config.id} at {config.endpoint}")
        metrics.TAGS_MONITORED.labels(config.id).set(len(config.tags))

    async def run(self, emit: Emit) -> None:
        next_delay = backoff_delays(0.5, self.config.reconnect_max_s)
        while True:
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
        while True:
            started = time.monotonic()
            values, complete = await self.scan(client)
            metrics.READ_SECONDS.labels(self.controller_id).observe(time.monotonic() - started)
            if complete:
                metrics.CONTROLLER_UP.labels(self.controller_id).set(1)
                metrics.LAST_GOOD_READ.labels(self.controller_id).set(time.time())
            await emit(Readings(utcnow(), values, complete=complete))
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

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
            values.update({k: Reading(v) for k, v in decode_request(request, raw).items()})  # type: ignore[arg-type]
        return values, complete

    async def _read(
        self, client: AsyncModbusTcpClient, index: int, request: ReadRequest
    ) -> Sequence[int] | Sequence[bool] | None:
        read = {
            "holding": client.read_holding_registers,
            "input": client.read_input_registers,
            "coil": client.read_coils,
            "discrete": client.read_discrete_inputs,
        }[request.table]
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
        metrics.READS.labels(self.controller_id, "ok").inc()
        if request.is_bits:
            return list(response.bits[: request.count])
        return list(response.registers)
