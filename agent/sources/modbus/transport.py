"""The one owner of a Modbus device's connection: the pymodbus client, read only.

Everything the agent says to a Modbus device goes through one `ModbusTransport`, one per
source (sources never share a client). It makes the client (no retries and no reconnects of
pymodbus's own: the source's loop reconnects, with the capped backoff kept here), serialises
requests with a lock (pymodbus allows one request in flight per connection, and a client
must not be used by two tasks without one), pauses ``pacing_ms`` before a request when asked
(the source asks for every request of its plan but the first), and translates the answers:
the registers or bits of a good one, ``None`` for a Modbus exception (a busy device), and
`TagConfigError` when the device refuses the addresses (exception codes 2 and 3), which no
retry fixes. Only the four read functions are ever called: there is no write path here.
"""

from __future__ import annotations

import asyncio

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from agent import metrics
from agent.errors import ControllerUnreachable, TagConfigError
from agent.runtime.backoff import Backoff
from agent.sources.modbus.config import ModbusControllerConfig
from agent.sources.modbus.plan import RawValues, ReadRequest

#: What a lost or refused connection raises inside pymodbus and asyncio.
CONNECTION_ERRORS = (ModbusException, OSError, TimeoutError, ControllerUnreachable)

#: Modbus exception codes: the address is wrong for this device (a config error).
_ADDRESS_ERRORS = {2, 3}

#: The client method that reads each register table.
_READ_METHOD = {
    "holding": "read_holding_registers",
    "input": "read_input_registers",
    "coil": "read_coils",
    "discrete": "read_discrete_inputs",
}

#: The first reconnect delay (seconds); it doubles up to the controller's ``reconnect_max_s``.
_FIRST_DELAY_S = 0.5


class ModbusTransport:
    """One Modbus TCP device's connection: connect, read, close, wait before reconnecting."""

    def __init__(self, config: ModbusControllerConfig) -> None:
        self.config = config
        self._client: AsyncModbusTcpClient | None = None
        self._lock = asyncio.Lock()
        self._pacing_s = config.pacing_ms / 1000.0
        self._backoff = Backoff(_FIRST_DELAY_S, config.reconnect_max_s)
        self._reads_ok = metrics.READS.labels(config.id, "ok")  # labels() costs a lookup per call

    async def connect(self) -> None:
        """Open a new connection; raise one of `CONNECTION_ERRORS` if the device refuses it."""
        self.close()
        self._client = AsyncModbusTcpClient(
            self.config.host,
            port=self.config.port,
            timeout=self.config.timeout_s,
            retries=0,
            reconnect_delay=0,
        )
        if not await self._client.connect():
            raise ControllerUnreachable("connection refused", controller=self.config.id)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def reset_backoff(self) -> None:
        """The connection is up: the next outage starts again from the shortest delay."""
        self._backoff.reset()

    async def wait_to_reconnect(self) -> None:
        """Sleep the next reconnect delay: 0.5 s, doubling up to ``reconnect_max_s``."""
        await asyncio.sleep(self._backoff.next())

    async def read(self, request: ReadRequest, *, paced: bool = False) -> RawValues | None:
        """The registers (or bits) of one planned request, from ``request.start``.

        ``paced``: pause ``pacing_ms`` first, so the agent never floods a PLC. None
        when the device answered with a Modbus exception; `TagConfigError` when that
        exception says the addresses are wrong for this device.
        """
        client = self._client
        if client is None:
            raise ControllerUnreachable("not connected", controller=self.config.id)
        async with self._lock:
            if paced and self._pacing_s:
                await asyncio.sleep(self._pacing_s)
            read = getattr(client, _READ_METHOD[request.table])
            response = await read(
                request.start, count=request.count, device_id=self.config.device_id
            )
        if response.isError():
            self._exception(request, getattr(response, "exception_code", 0))
            return None
        self._reads_ok.inc()
        if request.is_bits:
            return list(response.bits[: request.count])
        return response.registers  # type: ignore[no-any-return]  # a fresh list per response

    def _exception(self, request: ReadRequest, code: int) -> None:
        """Count a Modbus exception answer; raise `TagConfigError` if it refuses the addresses."""
        metrics.READS.labels(self.config.id, f"exception_{code}").inc()
        if code not in _ADDRESS_ERRORS:
            return
        names = ", ".join(t.name for t in request.tags)
        raise TagConfigError(
            f"controller {self.config.id} refuses {request.table} {request.start}.."
            f"{request.start + request.count - 1} (tags {names}): fix their addresses in the "
            "config",
            controller=self.config.id,
        )
