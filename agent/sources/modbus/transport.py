"""One device's way to its controller: a unit id on a `ModbusLine`, read only.

Everything the agent says to a Modbus device goes through its `ModbusTransport`, one per
source. The transport reads through the device's line (`agent.sources.modbus.line`: the one
owner of the connection, a Modbus TCP socket of its own, or a serial port or RTU over TCP
gateway shared with the other devices on it), asks for a pause of ``pacing_ms`` before a
request when told to (the source asks for every request of its plan but the first), keeps
the device's reconnect backoff, and translates the answers: the registers or bits of a good
one, a `Refusal` for a Modbus exception answer (illegal data address, device busy, a gateway
that cannot reach its slave, ...). A refusal concerns that one request: the device answered,
the connection stands, and the source asks again next scan (an address refused during a
program download is read again once it is back). A device that does not answer, or a lost
connection, raises one of `CONNECTION_ERRORS`. Only the four read functions are ever called:
there is no write path here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pymodbus.exceptions import ModbusException, ModbusIOException

from agent import metrics
from agent.errors import ControllerUnreachable
from agent.runtime.backoff import Backoff
from agent.sources.modbus.config import ModbusControllerConfig
from agent.sources.modbus.line import ModbusLine
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


#: The first reconnect delay (seconds); it doubles up to the controller's ``reconnect_max_s``.
_FIRST_DELAY_S = 0.5


class ModbusTransport:
    """One Modbus device (a unit id on a line): connect, read, close, wait to reconnect."""

    def __init__(self, config: ModbusControllerConfig, line: ModbusLine | None = None) -> None:
        """``line``: the line the device is on (`ModbusLines.line_for`); None: a line of
        its own."""
        self.config = config
        self.line = line if line is not None else ModbusLine(config)
        self._attached = False
        self._pacing_s = config.pacing_ms / 1000.0
        self._backoff = Backoff(_FIRST_DELAY_S, config.reconnect_max_s)
        self._reads_ok = metrics.READS.labels(config.id, "ok")  # labels() costs a lookup per call

    async def connect(self) -> None:
        """Join the line, opening it if needed; raise one of `CONNECTION_ERRORS` if the
        device's port or peer refuses."""
        self.close()
        await self.line.attach(self.config.id)
        self._attached = True

    def close(self) -> None:
        """Leave the line (closed once its last device leaves)."""
        if self._attached:
            self._attached = False
            self.line.detach()

    def reset_backoff(self) -> None:
        """The connection is up: the next outage starts again from the shortest delay."""
        self._backoff.reset()

    async def wait_to_reconnect(self) -> None:
        """Sleep the next reconnect delay: 0.5 s, doubling up to ``reconnect_max_s``."""
        await asyncio.sleep(self._backoff.next())

    async def read(self, request: ReadRequest, *, paced: bool = False) -> RawValues | Refusal:
        """The registers (or bits) of one planned request, from ``request.start``, or the
        device's `Refusal` (a Modbus exception answer).

        ``paced``: pause ``pacing_ms`` first, so the agent never floods a PLC. No answer, or
        a lost connection, raises one of `CONNECTION_ERRORS`.
        """
        config = self.config
        if not self._attached:
            raise ControllerUnreachable("not connected", controller=config.id)
        pause = self._pacing_s if paced else 0.0
        try:
            response = await self.line.read(config.device_id, request, pause, config.id)
        except ModbusIOException as exc:
            raise ControllerUnreachable(
                f"no answer from device_id {config.device_id} on {self.line.name} ({exc})",
                controller=config.id,
            ) from exc
        if response.isError():
            code = int(getattr(response, "exception_code", 0) or 0)
            metrics.READS.labels(config.id, f"exception_{code}").inc()
            return Refusal(code)
        self._reads_ok.inc()
        if request.is_bits:
            return list(response.bits[: request.count])
        return response.registers  # a fresh list per response
