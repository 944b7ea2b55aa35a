"""A read through a line's client (`agent.sources.modbus.exchange.ask`) against a scripted
Modbus TCP device on a loopback port: each answer is the one to its own request, a device
that does not answer (or answers as another unit) is a `ControllerUnreachable` after the
timeout, and the connection goes on serving the next request. The device here is a few lines
of asyncio so that it can misbehave on cue; the answers a real PLC gives are checked against
the simulated plant in ``test_responses.py`` and ``test_transport.py``.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException

from agent.errors import ControllerUnreachable
from agent.sources.modbus import ModbusControllerConfig, ModbusTransport, ReadRequest
from agent.sources.modbus.exchange import ask, read_request
from agent.sources.modbus.transport import Refusal
from tests.agent.sources.factories import modbus_controller

#: (transaction id, unit id, function code, start, count) -> the frames to send back.
Script = Callable[[int, int, int, int, int], list[bytes]]


def registers(tid: int, unit: int, fc: int, values: list[int]) -> bytes:
    """A read-registers answer frame (MBAP header, function code, byte count, registers)."""
    pdu = struct.pack(f">BB{len(values)}H", fc, 2 * len(values), *values)
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def refusal(tid: int, unit: int, fc: int, code: int) -> bytes:
    return struct.pack(">HHHBBB", tid, 0, 3, unit, fc | 0x80, code)


def register_values(start: int, count: int) -> list[int]:
    """The scripted device's registers: each one's value is its address plus 1000."""
    return [1000 + a for a in range(start, start + count)]


def honest(tid: int, unit: int, fc: int, start: int, count: int) -> list[bytes]:
    return [registers(tid, unit, fc, register_values(start, count))]


class Device:
    """A Modbus TCP device that answers each read request as its script says."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[tuple[int, int, int, int, int]] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                frame = await reader.readexactly(12)  # MBAP header and a read request's PDU
                tid, _, _, unit, fc, start, count = struct.unpack(">HHHBBHH", frame)
                self.requests.append((tid, unit, fc, start, count))
                for answer in self.script(tid, unit, fc, start, count):
                    writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def device() -> AsyncIterator[tuple[Device, int]]:
    dev = Device(honest)
    server = await asyncio.start_server(dev.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield dev, port


def transport_to(port: int, **extra: object) -> ModbusTransport:
    config = modbus_controller({"name": "a", "address": 0}, port=port, timeout_s=0.3, **extra)
    assert isinstance(config, ModbusControllerConfig)
    return ModbusTransport(config)


HOLDING_0_10 = ReadRequest("holding", 0, 10, ())
HOLDING_20_5 = ReadRequest("holding", 20, 5, ())


async def test_every_answer_is_the_one_to_its_own_request(device: tuple[Device, int]) -> None:
    dev, port = device
    transport = transport_to(port)
    await transport.connect()
    try:
        got = [await transport.read(r) for r in (HOLDING_0_10, HOLDING_20_5, HOLDING_0_10)]
    finally:
        transport.close()
    assert got == [register_values(0, 10), register_values(20, 5), register_values(0, 10)]
    tids = [tid for tid, *_ in dev.requests]
    assert len(set(tids)) == 3, "each request has a transaction id of its own"


async def test_a_late_answer_to_an_earlier_transaction_is_not_taken(
    device: tuple[Device, int],
) -> None:
    """The device first sends an answer to an older transaction (other registers), then the
    right one: the read returns the right one."""
    dev, port = device

    def stale_first(tid: int, unit: int, fc: int, start: int, count: int) -> list[bytes]:
        return [registers(tid + 100, unit, fc, [7] * count), *honest(tid, unit, fc, start, count)]

    dev.script = stale_first
    transport = transport_to(port)
    await transport.connect()
    try:
        assert await transport.read(HOLDING_20_5) == register_values(20, 5)
    finally:
        transport.close()


@pytest.mark.parametrize("answer", ["none", "another unit"])
async def test_no_answer_is_an_unreachable_device_and_the_line_still_serves(
    device: tuple[Device, int], answer: str
) -> None:
    dev, port = device
    asked = {"n": 0}

    def misbehaves_once(tid: int, unit: int, fc: int, start: int, count: int) -> list[bytes]:
        asked["n"] += 1
        if asked["n"] > 1:
            return honest(tid, unit, fc, start, count)
        return [] if answer == "none" else honest(tid, unit + 1, fc, start, count)

    dev.script = misbehaves_once
    transport = transport_to(port)
    await transport.connect()
    try:
        with pytest.raises(ControllerUnreachable, match="no answer from device_id 1"):
            await transport.read(HOLDING_0_10)
        assert await transport.read(HOLDING_20_5) == register_values(20, 5)
    finally:
        transport.close()


async def test_an_exception_answer_is_a_refusal(device: tuple[Device, int]) -> None:
    dev, port = device
    dev.script = lambda tid, unit, fc, start, count: [refusal(tid, unit, fc, 6)]
    transport = transport_to(port)
    await transport.connect()
    try:
        assert await transport.read(HOLDING_0_10) == Refusal(6)
    finally:
        transport.close()


async def test_asking_a_client_that_is_not_connected_raises(device: tuple[Device, int]) -> None:
    _, port = device
    client = AsyncModbusTcpClient("127.0.0.1", port=port, retries=0, reconnect_delay=0)
    with pytest.raises(ConnectionException):
        await ask(client, read_request("holding", 0, 1, 1))
