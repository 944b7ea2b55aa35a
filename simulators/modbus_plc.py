"""A simulated Modbus TCP PLC: one pymodbus server on loopback, one or more device ids.

Scenario-side reads and writes go straight to the server's datastore and are not counted.
Every write request that arrives over the wire (function codes 5, 6, 15, 16, 22, 23) is counted
in ``foreign_writes``, whether it succeeds or not: that is how tests prove the agent never writes.
Faults (exception responses, slow responses, dropped connections, restarts) apply to client
requests only. An exception can be limited to the requests that touch some addresses and to a
window of time (`ModbusPLC.exception_window`): a gateway that loses one slave for two seconds,
an "illegal data address" for one block while a PLC program is downloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from simulators.broker import free_port
from simulators.codec import decode, encode
from simulators.errors import SimulatorError, ValueOutOfRange
from simulators.plant import ModbusController, ModbusTable, ModbusTag, Scalar

BIND_ATTEMPTS = 5
WRITE_FUNCTION_CODES = frozenset({5, 6, 15, 16, 22, 23})
#: The function codes that touch each table the simulated PLCs have.
TABLE_FUNCTION_CODES = {"holding": frozenset({3, 6, 16, 22, 23}), "coil": frozenset({1, 5, 15})}
EXCEPTIONS = {
    "device_busy": ExcCodes.DEVICE_BUSY,
    "illegal_address": ExcCodes.ILLEGAL_ADDRESS,
    "device_failure": ExcCodes.DEVICE_FAILURE,
    "gateway_path_unavailable": ExcCodes.GATEWAY_PATH_UNAVIABLE,
    "gateway_no_response": ExcCodes.GATEWAY_NO_RESPONSE,
}


@dataclass
class ModbusFaults:
    """Faults a scenario switched on; ``exception`` is a key of ``EXCEPTIONS``.

    ``exception_addresses``: only requests that touch one of these addresses of
    ``exception_table`` (``holding`` or ``coil``) get the exception (None: every request).
    ``exception_until``: the exception ends by itself at this ``time.monotonic()`` (None: when
    cleared).
    """

    exception: str | None = None
    delay_s: float = 0.0
    exception_addresses: range | None = None
    exception_table: str = "holding"
    exception_until: float | None = None

    def refuses(self, function_code: int, address: int, count: int) -> ExcCodes | None:
        """The exception a request for ``count`` items from ``address`` gets now, if any."""
        if self.exception is None:
            return None
        if self.exception_until is not None and time.monotonic() >= self.exception_until:
            return None
        wanted = self.exception_addresses
        if wanted is not None:
            if function_code not in TABLE_FUNCTION_CODES[self.exception_table]:
                return None
            if not (address < wanted.stop and wanted.start < address + count):
                return None
        return EXCEPTIONS[self.exception]


@dataclass
class _Layout:
    """Register and coil counts per device id, derived from the tags."""

    holding: dict[int, int] = field(default_factory=dict)
    coils: dict[int, int] = field(default_factory=dict)


def layout(config: ModbusController) -> _Layout:
    """How many holding registers and coils each device needs (coils rounded up to 16)."""
    out = _Layout()
    for dev in config.device_ids():
        out.holding[dev], out.coils[dev] = 1, 16
    for tag in config.tags:
        dev = tag.device_id or config.device_id
        end = tag.address + tag.register_count
        if tag.table is ModbusTable.COIL:
            out.coils[dev] = max(out.coils[dev], (end + 15) // 16 * 16)
        else:
            out.holding[dev] = max(out.holding[dev], end)
    return out


class ModbusPLC:
    """One simulated Modbus TCP controller. Start with ``await plc.start()``."""

    def __init__(self, config: ModbusController, port: int = 0) -> None:
        """``port`` 0 picks a free port when the PLC first starts; restarts keep it."""
        self.config = config
        self.port = port
        self.faults = ModbusFaults()
        self.foreign_writes = 0
        self._internal = 0
        self._server: ModbusTcpServer | None = None
        self._snapshot: dict[tuple[int, int], list[int] | list[bool]] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def _devices(self) -> list[SimDevice]:
        plan = layout(self.config)
        return [
            SimDevice(
                id=dev,
                simdata=(
                    [SimData(0, count=plan.coils[dev], values=False, datatype=DataType.BITS)],
                    [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                    [SimData(0, count=plan.holding[dev], values=0, datatype=DataType.REGISTERS)],
                    [SimData(0, count=1, values=0, datatype=DataType.REGISTERS)],
                ),
                action=self._on_request,
            )
            for dev in self.config.device_ids()
        ]

    async def _on_request(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """Apply the active faults to client requests; scenario access passes untouched."""
        if self._internal:
            return None
        if self.faults.delay_s > 0:
            await asyncio.sleep(self.faults.delay_s)
        return self.faults.refuses(function_code, address, count)

    def exception_window(
        self, exception: str, seconds: float, addresses: range | None = None,
        table: str = "holding",
    ) -> None:
        """Answer client requests with ``exception`` (a key of ``EXCEPTIONS``) for ``seconds``
        from now; only those touching ``addresses`` of ``table`` if given. It ends by itself."""
        if exception not in EXCEPTIONS or table not in TABLE_FUNCTION_CODES:
            raise SimulatorError(
                f"unknown exception {exception!r} or table {table!r}; use one of "
                f"{sorted(EXCEPTIONS)} and one of {sorted(TABLE_FUNCTION_CODES)}"
            )
        self.faults = ModbusFaults(
            exception=exception,
            delay_s=self.faults.delay_s,
            exception_addresses=addresses,
            exception_table=table,
            exception_until=time.monotonic() + seconds,
        )

    def _trace(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        """Count write requests received over the wire (pymodbus calls this for every PDU)."""
        if not sending and pdu.function_code in WRITE_FUNCTION_CODES:
            self.foreign_writes += 1
        return pdu

    async def start(self) -> None:
        """Listen on 127.0.0.1:port and load the initial (or last known) values."""
        if self._server is not None:
            return
        self._server = await self._listen()
        if self._snapshot is None:
            for tag in self.config.tags:
                await self.write(tag.name, tag.initial)
        else:
            await self._restore(self._snapshot)

    async def _listen(self) -> ModbusTcpServer:
        """Bind 127.0.0.1:port; port 0 picks a free port at bind time, again if it was taken."""
        for _ in range(BIND_ATTEMPTS):
            port = self.port or free_port()
            server = ModbusTcpServer(
                self._devices(), address=("127.0.0.1", port), trace_pdu=self._trace
            )
            try:
                await server.serve_forever(background=True)
            except RuntimeError:
                await server.shutdown()  # type: ignore[no-untyped-call]
                if self.port:
                    break
                continue
            self.port = port
            return server
        raise SimulatorError(
            f"controller {self.config.id!r}: cannot listen on 127.0.0.1:{self.port or 'free port'}"
            " (fix: choose another port in the plant file, or 0 for a free one)"
        )

    async def reset(self) -> None:
        """Back to the plant file: initial values, no faults, write counter at zero."""
        self.faults = ModbusFaults()
        self.foreign_writes = 0
        for tag in self.config.tags:
            await self.write(tag.name, tag.initial)

    async def stop(self) -> None:
        """Close the listener and every client connection; values are kept for a restart."""
        server, self._server = self._server, None
        if server is None:
            return
        self._snapshot = await self._capture(server)
        await server.shutdown()  # type: ignore[no-untyped-call]

    async def restart(self, downtime_s: float = 0.0) -> None:
        """Stop, stay down ``downtime_s`` seconds, start again on the same port with same values."""
        await self.stop()
        await asyncio.sleep(downtime_s)
        await self.start()

    def set_stored(self, name: str, value: Scalar) -> None:
        """Change a tag while the PLC is stopped; it serves the new value when started again."""
        if self._server is not None or self._snapshot is None:
            raise SimulatorError(f"controller {self.config.id!r}: set_stored needs a stopped PLC")
        tag = self.config.tag(name)
        dev = tag.device_id or self.config.device_id
        if tag.table is ModbusTable.COIL:
            bits = list(self._snapshot[(dev, 1)])
            bits[tag.address] = bool(value)
            self._snapshot[(dev, 1)] = [bool(b) for b in bits]
            return
        regs = [int(r) for r in self._snapshot[(dev, 3)]]
        regs[tag.address : tag.address + tag.register_count] = encode(tag, value)
        self._snapshot[(dev, 3)] = regs

    def drop_connections(self) -> int:
        """Close every client connection (the listener stays up); returns how many were closed."""
        server = self._require()
        conns = list(server.active_connections.values())
        for conn in conns:
            conn.close()
        return len(conns)

    async def _capture(
        self, server: ModbusTcpServer
    ) -> dict[tuple[int, int], list[int] | list[bool]]:
        plan = layout(self.config)
        snap: dict[tuple[int, int], list[int] | list[bool]] = {}
        self._internal += 1
        try:
            for dev in self.config.device_ids():
                snap[(dev, 3)] = await server.async_getValues(dev, 3, 0, plan.holding[dev])
                snap[(dev, 1)] = await server.async_getValues(dev, 1, 0, plan.coils[dev])
        finally:
            self._internal -= 1
        return snap

    async def _restore(self, snap: dict[tuple[int, int], list[int] | list[bool]]) -> None:
        server = self._require()
        self._internal += 1
        try:
            for (dev, fc), values in snap.items():
                await server.async_setValues(dev, 16 if fc == 3 else 15, 0, values)
        finally:
            self._internal -= 1

    def _require(self) -> ModbusTcpServer:
        if self._server is None:
            raise SimulatorError(f"controller {self.config.id!r} is not running")
        return self._server

    async def read(self, name: str) -> Scalar:
        """The engineering value of a tag, read from the datastore (not counted, no faults)."""
        tag = self.config.tag(name)
        return await self._read_tag(tag)

    async def _read_tag(self, tag: ModbusTag) -> Scalar:
        server = self._require()
        dev = tag.device_id or self.config.device_id
        self._internal += 1
        try:
            if tag.table is ModbusTable.COIL:
                bits = await server.async_getValues(dev, 1, tag.address, 1)
                return bool(bits[0])
            regs = await server.async_getValues(dev, 3, tag.address, tag.register_count)
        finally:
            self._internal -= 1
        return decode(tag, [int(r) for r in regs])

    async def write(self, name: str, value: Scalar) -> None:
        """Set a tag in engineering units from the plant side (not counted as a foreign write)."""
        tag = self.config.tag(name)
        server = self._require()
        dev = tag.device_id or self.config.device_id
        if tag.table is ModbusTable.COIL:
            if not isinstance(value, bool | int) or isinstance(value, str):
                raise ValueOutOfRange(f"coil {tag.name!r} takes true/false, not {value!r}")
            payload: list[int] | list[bool] = [bool(value)]
            fc = 15
        else:
            payload, fc = encode(tag, value), 16
        self._internal += 1
        try:
            await server.async_setValues(dev, fc, tag.address, payload)
        finally:
            self._internal -= 1


async def close_quietly(plc: ModbusPLC) -> None:
    """Stop a PLC during cleanup without letting a second failure hide the first."""
    with contextlib.suppress(Exception):
        await plc.stop()
