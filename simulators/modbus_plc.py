"""A simulated Modbus PLC: one pymodbus server, one or more device ids, read only for us.

It serves Modbus TCP on a loopback port, RTU frames on a loopback port (a serial gateway's
"RTU over TCP"), or RTU or ASCII on a serial device (in tests, one end of a ``socat`` pty pair
whose other end the agent opens), as its controller's ``transport`` says. Holding and input
registers, coils and discrete inputs hold the plant's tags.

Scenario-side reads and writes go straight to the server's datastore and are not counted.
Every write request that arrives over the wire (function codes 5, 6, 15, 16, 22, 23) is counted
in ``foreign_writes``, whether it succeeds or not: that is how tests prove the agent never writes.
Faults (exception responses, slow responses, silent devices, dropped connections, restarts)
apply to client requests only. An exception can be limited to the requests that touch some
addresses and to a window of time (`ModbusPLC.exception_window`): a gateway that loses one
slave for two seconds, an "illegal data address" for one block while a PLC program is
downloaded. On RTU (serial or over TCP) a device id the plant does not have stays silent, as
on a real line, and so does one in ``faults.silent_devices`` (a device switched off).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.base import ModbusBaseServer
from pymodbus.simulator import DataType, SimData, SimDevice

from simulators.broker import free_port
from simulators.codec import decode, encode
from simulators.errors import SimulatorError, ValueOutOfRange
from simulators.plant import ModbusController, ModbusTable, ModbusTag, Scalar

BIND_ATTEMPTS = 5
WRITE_FUNCTION_CODES = frozenset({5, 6, 15, 16, 22, 23})
#: The function codes that touch each table the simulated PLCs have.
TABLE_FUNCTION_CODES = {
    "holding": frozenset({3, 6, 16, 22, 23}),
    "input": frozenset({4}),
    "coil": frozenset({1, 5, 15}),
    "discrete": frozenset({2}),
}
#: The function code that reads a table, and the one the datastore takes to set it.
READ_CODE = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}
SET_CODE = {"coil": 15, "discrete": 2, "holding": 16, "input": 4}
#: The device that takes, on RTU, the requests for ids the plant lacks (pymodbus's datastore
#: gives them to device 0); its answers are never sent.
_NOBODY = 0
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
    cleared). ``silent_devices``: device ids that never answer (the client times out).
    """

    exception: str | None = None
    delay_s: float = 0.0
    exception_addresses: range | None = None
    exception_table: str = "holding"
    exception_until: float | None = None
    silent_devices: frozenset[int] = frozenset()

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


def layout(config: ModbusController) -> dict[str, dict[int, int]]:
    """Per table, how many registers (or bits, rounded up to 16) each device id needs."""
    out: dict[str, dict[int, int]] = {t.value: {} for t in ModbusTable}
    for dev in config.device_ids():
        for table in ModbusTable:
            out[table.value][dev] = 16 if table.is_bits else 1
    for tag in config.tags:
        dev = tag.device_id or config.device_id
        end = tag.address + tag.register_count
        if tag.table.is_bits:
            end = (end + 15) // 16 * 16
        sizes = out[tag.table.value]
        sizes[dev] = max(sizes[dev], end)
    return out


class ModbusPLC:
    """One simulated Modbus controller. Start with ``await plc.start()``."""

    def __init__(self, config: ModbusController, port: int = 0) -> None:
        """``port`` 0 picks a free port when the PLC first starts; restarts keep it. A
        serial PLC has no port: it serves ``config.serial.port``."""
        self.config = config
        self.port = port
        self.faults = ModbusFaults()
        self.foreign_writes = 0
        self._internal = 0
        self._server: ModbusBaseServer | None = None
        self._snapshot: dict[tuple[int, str], list[int] | list[bool]] | None = None
        self._framer = _framer(config)
        self._ids = frozenset(config.device_ids())

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:<port>``, or the serial device it serves."""
        if self.config.serial is not None:
            return self.config.serial.port
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def _devices(self) -> list[SimDevice]:
        plan = layout(self.config)
        ids = self.config.device_ids()
        devices = [self._device(dev, {t: plan[t][dev] for t in plan}) for dev in ids]
        if self._framer is not FramerType.SOCKET:
            devices.append(self._device(_NOBODY, {t: 16 for t in plan}))
        return devices

    def _device(self, dev: int, sizes: dict[str, int]) -> SimDevice:
        def block(table: str) -> list[SimData]:
            if table in ("coil", "discrete"):
                return [SimData(0, count=sizes[table], values=False, datatype=DataType.BITS)]
            return [SimData(0, count=sizes[table], values=0, datatype=DataType.REGISTERS)]

        return SimDevice(
            id=dev,
            simdata=(block("coil"), block("discrete"), block("holding"), block("input")),
            action=self._on_request,
        )

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

    def _trace_packet(self, sending: bool, packet: bytes) -> bytes:
        """Keep silent devices silent: their answers are dropped, never sent."""
        if sending and packet:
            dev = _device_id(self._framer, packet)
            unknown = self._framer is not FramerType.SOCKET and dev not in self._ids
            if unknown or dev in self.faults.silent_devices:
                return b""
        return packet

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

    async def _listen(self) -> ModbusBaseServer:
        """Serve the serial port, or bind 127.0.0.1:port (port 0 picks a free port at bind
        time, again if it was taken)."""
        if self.config.serial is not None:
            return await self._serve_serial()
        for _ in range(BIND_ATTEMPTS):
            port = self.port or free_port()
            server = ModbusTcpServer(
                self._devices(), address=("127.0.0.1", port), framer=self._framer,
                trace_pdu=self._trace, trace_packet=self._trace_packet,
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

    async def _serve_serial(self) -> ModbusBaseServer:
        line = self.config.serial
        assert line is not None
        server = ModbusSerialServer(
            self._devices(), framer=self._framer, port=line.port, baudrate=line.baudrate,
            bytesize=line.bytesize, parity=line.parity, stopbits=line.stopbits,
            trace_pdu=self._trace, trace_packet=self._trace_packet,
        )
        try:
            await server.serve_forever(background=True)
        except RuntimeError:
            await server.shutdown()  # type: ignore[no-untyped-call]
            raise SimulatorError(
                f"controller {self.config.id!r}: cannot open serial port {line.port} (fix: "
                "check serial.port in the plant file; a pty pair comes from socat)"
            ) from None
        return server

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
        key = (tag.device_id or self.config.device_id, tag.table.value)
        if tag.table.is_bits:
            bits = [bool(b) for b in self._snapshot[key]]
            bits[tag.address] = bool(value)
            self._snapshot[key] = bits
            return
        regs = [int(r) for r in self._snapshot[key]]
        regs[tag.address : tag.address + tag.register_count] = encode(tag, value)
        self._snapshot[key] = regs

    def drop_connections(self) -> int:
        """Close every client connection (the listener stays up); returns how many were closed.
        A serial line has no connection to drop: 0."""
        server = self._require()
        conns = list(server.active_connections.values())
        for conn in conns:
            conn.close()
        return len(conns)

    async def _capture(
        self, server: ModbusBaseServer
    ) -> dict[tuple[int, str], list[int] | list[bool]]:
        plan = layout(self.config)
        snap: dict[tuple[int, str], list[int] | list[bool]] = {}
        self._internal += 1
        try:
            for dev in self.config.device_ids():
                for table, sizes in plan.items():
                    snap[(dev, table)] = await server.async_getValues(
                        dev, READ_CODE[table], 0, sizes[dev]
                    )
        finally:
            self._internal -= 1
        return snap

    async def _restore(self, snap: dict[tuple[int, str], list[int] | list[bool]]) -> None:
        server = self._require()
        self._internal += 1
        try:
            for (dev, table), values in snap.items():
                await server.async_setValues(dev, SET_CODE[table], 0, values)
        finally:
            self._internal -= 1

    def _require(self) -> ModbusBaseServer:
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
        code = READ_CODE[tag.table.value]
        self._internal += 1
        try:
            if tag.table.is_bits:
                bits = await server.async_getValues(dev, code, tag.address, 1)
                return bool(bits[0])
            regs = await server.async_getValues(dev, code, tag.address, tag.register_count)
        finally:
            self._internal -= 1
        return decode(tag, [int(r) for r in regs])

    async def write(self, name: str, value: Scalar) -> None:
        """Set a tag in engineering units from the plant side (not counted as a foreign write)."""
        tag = self.config.tag(name)
        server = self._require()
        dev = tag.device_id or self.config.device_id
        if tag.table.is_bits:
            if not isinstance(value, bool | int) or isinstance(value, str):
                raise ValueOutOfRange(
                    f"{tag.table.value} {tag.name!r} takes true/false, not {value!r}"
                )
            payload: list[int] | list[bool] = [bool(value)]
        else:
            payload = encode(tag, value)
        self._internal += 1
        try:
            await server.async_setValues(dev, SET_CODE[tag.table.value], tag.address, payload)
        finally:
            self._internal -= 1


def _framer(config: ModbusController) -> FramerType:
    if config.serial is not None and config.serial.mode == "ascii":
        return FramerType.ASCII
    return FramerType.SOCKET if config.transport == "tcp" else FramerType.RTU


def _device_id(framer: FramerType, packet: bytes) -> int:
    """The device id of a frame: RTU's first byte, ASCII's first two hex digits after the
    colon, the MBAP header's unit id (byte 6) on Modbus TCP."""
    if framer is FramerType.RTU:
        return packet[0]
    if framer is FramerType.ASCII:
        return int(packet[1:3], 16)
    return packet[6] if len(packet) > 6 else -1


async def close_quietly(plc: ModbusPLC) -> None:
    """Stop a PLC during cleanup without letting a second failure hide the first."""
    with contextlib.suppress(Exception):
        await plc.stop()
