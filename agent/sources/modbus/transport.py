"""The one owner of a Modbus device's connection: the pymodbus client, read only.

Everything the agent says to a Modbus device goes through one `ModbusTransport`, one per
source (sources never share a client). It makes the client (no retries and no reconnects of
pymodbus's own: the source's loop reconnects, with the capped backoff kept here), serialises
requests with a lock (pymodbus allows one request in flight per connection, and a client
must not be used by two tasks without one), pauses ``pacing_ms`` before a request when asked
(the source asks for every request of its plan but the first), and translates the answers:
the registers or bits of a good one, a `Refusal` for a Modbus exception answer (illegal data
address, device busy, a gateway that cannot reach its slave, ...). A refusal concerns that
one request: the device answered, the connection stands, and the source asks again next
scan (an address refused during a program download is read again once it is back). A lost
connection raises one of `CONNECTION_ERRORS`. Only the four read functions are ever called:
there is no write path here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from agent import metrics
from agent.errors import ControllerUnreachable
from agent.runtime.backoff import Backoff
from agent.sources.modbus.config import ModbusControllerConfig
from agent.sources.modbus.plan import RawValues, ReadRequest

#: What a lost or refused connection raises inside pymodbus and asyncio.
CONNECTION_ERRORS = (ModbusException, OSError, TimeoutError, ControllerUnreachable)

#: The Modbus exception codes, in the words of the Modbus application protocol.
EXCEPTION_MEANINGS = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge (busy with a long command)",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
#: Codes that, when they last, point at the config rather than at the device's state.
ADDRESS_CODES = frozenset({2, 3})


@dataclass(frozen=True, slots=True)
class Refusal:
    """The device answered a request with a Modbus exception: no values for its tags."""

    code: int

    @property
    def reason(self) -> str:
        """``Modbus exception 2 (illegal data address)``."""
        meaning = EXCEPTION_MEANINGS.get(self.code, "unknown exception code")
        return f"Modbus exception {self.code} ({meaning})"

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

    async def read(self, request: ReadRequest, *, paced: bool = False) -> RawValues | Refusal:
        """The registers (or bits) of one planned request, from ``request.start``, or the
        device's `Refusal` (a Modbus exception answer).

        ``paced``: pause ``pacing_ms`` first, so the agent never floods a PLC. A lost
        connection raises one of `CONNECTION_ERRORS`.
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
            code = int(getattr(response, "exception_code", 0) or 0)
            metrics.READS.labels(self.config.id, f"exception_{code}").inc()
            return Refusal(code)
        self._reads_ok.inc()
        if request.is_bits:
            return list(response.bits[: request.count])
        return response.registers  # type: ignore[no-any-return]  # a fresh list per response
