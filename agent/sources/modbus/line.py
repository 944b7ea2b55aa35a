"""The one owner of a Modbus connection (a line), and the directory of an agent's lines.

A `ModbusLine` is one connection: a Modbus TCP device's socket, an RTU over TCP gateway's
socket, or a serial port (RTU or ASCII). Every device on it, told apart by its unit id
(``device_id``), reads through it, and requests take turns under its lock: pymodbus allows one
request in flight per connection, and RTU frames carry no transaction id that could tell two
answers apart, so two devices on one RS-485 line must never be asked at once (Home
Assistant's modbus hub owns each port the same way). `ModbusLines` hands out the lines: one
per serial port or gateway, shared by the controllers on it, and one of its own to each
Modbus TCP controller (a TCP device takes several connections; sources never share them).

The first user opens a line and the last one to leave closes it. A user that meets an error
leaves and comes back after its own backoff (`agent.sources.modbus.transport`): a device that
does not answer is that device's outage, and the line stays open for the others; a port that
fails (an adapter unplugged, a gateway gone) closes under everyone, and whoever comes back
first opens a new connection. Only the four read functions are ever sent.
"""

from __future__ import annotations

import asyncio
import os

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.client.base import ModbusBaseClient
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from agent.errors import ControllerUnreachable
from agent.sources.modbus.config import ModbusControllerConfig
from agent.sources.modbus.exchange import ask, read_request
from agent.sources.modbus.plan import ReadRequest
from agent.sources.modbus.responses import register_fast_answers


class ModbusLine:
    """One connection and the devices that read through it, one request at a time."""

    def __init__(self, config: ModbusControllerConfig) -> None:
        """``config``: the first controller on the line; the line's settings are its own
        (the controllers on one line agree on them: `config.check_shared_lines`)."""
        self.name = config.line_name
        self.shared = config.line_key[0] != "tcp"
        self._config = config
        self._client: ModbusBaseClient | None = None
        self._users = 0
        self._lock = asyncio.Lock()
        #: The request object of each read the line's devices make, built on first use.
        self._requests: dict[tuple[str, int, int, int], ModbusPDU] = {}

    @property
    def is_open(self) -> bool:
        return self._client is not None and self._client.connected

    async def attach(self, controller: str) -> None:
        """Join the line, opening the connection unless it is open; raise
        `ControllerUnreachable` (naming ``controller``) if it cannot be opened."""
        async with self._lock:
            if not self.is_open:
                await self._open(controller)
            self._users += 1

    def detach(self) -> None:
        """Leave the line; the last user to leave closes the connection."""
        self._users = max(0, self._users - 1)
        if self._users == 0:
            self._close()

    async def read(
        self, device_id: int, request: ReadRequest, pause_s: float, controller: str
    ) -> ModbusPDU:
        """Send one read request to ``device_id`` once the line is free, after ``pause_s``
        of quiet; the answer as pymodbus gives it. A lost connection raises."""
        async with self._lock:
            client = self._client
            if client is None:
                raise ControllerUnreachable(f"{self.name} is not open", controller=controller)
            if pause_s:
                await asyncio.sleep(pause_s)
            key = (request.table, request.start, request.count, device_id)
            pdu = self._requests.get(key)
            if pdu is None:
                pdu = self._requests[key] = read_request(*key)
            return await ask(client, pdu)

    async def _open(self, controller: str) -> None:
        self._close()
        client = _make_client(self._config)
        try:
            opened = await client.connect()
        except BaseException:
            client.close()
            raise
        if not opened:
            client.close()
            raise ControllerUnreachable(_why_not_open(self._config), controller=controller)
        self._client = client

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class ModbusLines:
    """An agent's Modbus lines: the controllers on one serial port or one RTU over TCP
    gateway get the same `ModbusLine`; a Modbus TCP controller gets one of its own."""

    def __init__(self) -> None:
        self._lines: dict[tuple[str, ...], ModbusLine] = {}

    def line_for(self, config: ModbusControllerConfig) -> ModbusLine:
        if config.line_key[0] == "tcp":
            return ModbusLine(config)
        line = self._lines.get(config.line_key)
        if line is None:
            line = self._lines[config.line_key] = ModbusLine(config)
        return line


def _make_client(config: ModbusControllerConfig) -> ModbusBaseClient:
    """A pymodbus client with no retries and no reconnects of its own (the source's loop
    reconnects, with the capped backoff of its transport), that decodes register answers
    in one call (`agent.sources.modbus.responses`)."""
    client = _new_client(config)
    register_fast_answers(client)
    return client


def _new_client(config: ModbusControllerConfig) -> ModbusBaseClient:
    serial = config.serial
    if serial is not None:
        return AsyncModbusSerialClient(
            serial.port,
            framer=FramerType.ASCII if serial.mode == "ascii" else FramerType.RTU,
            baudrate=serial.baudrate,
            bytesize=serial.bytesize,
            parity=serial.parity,
            stopbits=serial.stopbits,
            timeout=config.timeout_s,
            retries=0,
            reconnect_delay=0,
        )
    return AsyncModbusTcpClient(
        config.host,
        port=config.port,
        framer=FramerType.RTU if config.transport == "rtu_over_tcp" else FramerType.SOCKET,
        timeout=config.timeout_s,
        retries=0,
        reconnect_delay=0,
    )


def _why_not_open(config: ModbusControllerConfig) -> str:
    """Why a connection did not open, as far as we can tell (pymodbus only says it did not)."""
    if config.serial is None:
        return "connection refused"
    port = config.serial.port
    if not os.path.exists(port):
        return (
            f"serial port {port} does not exist (adapter unplugged or renamed? "
            "/dev/serial/by-id/ has names that do not change)"
        )
    if not os.access(port, os.R_OK | os.W_OK):
        return (
            f"no permission to open serial port {port} (fix: add the agent's user to the "
            "group that owns it, often dialout)"
        )
    return f"cannot open serial port {port} (is another program using it?)"
