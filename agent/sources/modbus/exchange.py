"""One read request and its answer on a line's pymodbus client, with nothing per request
that the line already does.

pymodbus (3.16) sends every request through its transaction manager's ``execute``: a lock of
its own, a retry loop, and ``asyncio.wait_for`` for the timeout, which on Python 3.11 adds a
second future, a done-callback and one more turn of the event loop between the answer's
arrival and the caller (one request in flight per connection: that turn delays the next
request). The line (`agent.sources.modbus.line`) already serialises its requests under its
own lock and never retries, so `ask` keeps only what a read needs, from the same transaction
manager: its next transaction id, its framer (``pdu_send``), and the future its
``callback_data`` completes with the decoded answer (the answers of
`agent.sources.modbus.responses` included), with a timer for the timeout. A device that does
not answer within the client's timeout raises pymodbus's `ModbusIOException`, as
``execute`` does with no retries; a client that is not connected raises its
`ConnectionException`. Those parts of the transaction manager are the same from pymodbus
3.10 (the lower bound) to 3.16; ``tests/agent/sources/modbus/test_exchange.py`` reads
through them from a scripted device and fails if they change. Only the four read requests
are ever built (`read_request`); nothing here writes.
"""

from __future__ import annotations

import asyncio

from pymodbus.client.base import ModbusBaseClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.bit_message import ReadCoilsRequest, ReadDiscreteInputsRequest
from pymodbus.pdu.register_message import ReadHoldingRegistersRequest, ReadInputRegistersRequest

#: The read request of each register table; the only requests the agent ever sends.
READ_REQUESTS: dict[str, type[ModbusPDU]] = {
    "holding": ReadHoldingRegistersRequest,
    "input": ReadInputRegistersRequest,
    "coil": ReadCoilsRequest,
    "discrete": ReadDiscreteInputsRequest,
}


def read_request(table: str, start: int, count: int, device_id: int) -> ModbusPDU:
    """The request that reads ``count`` items of ``table`` from ``start`` on ``device_id``
    (its address and count checked when it is sent). `ask` sets its transaction id, so a
    line that keeps it for the next scan keeps it to itself."""
    return READ_REQUESTS[table](address=start, count=count, dev_id=device_id)


async def ask(client: ModbusBaseClient, request: ModbusPDU) -> ModbusPDU:
    """Send ``request`` and return the answer as the client decodes it (an exception answer
    included: ``isError()``). The caller holds the line, so this is the one request in
    flight on ``client``."""
    ctx = client.ctx
    if not ctx.transport:
        raise ConnectionException(f"Not connected[{client!s}]")
    loop = asyncio.get_running_loop()
    request.transaction_id = tid = ctx.getNextTID()
    ctx.recv_buffer = b""
    answer: asyncio.Future[ModbusPDU] = loop.create_future()
    ctx.response_future = answer
    ctx.pdu_send(request)
    timeout = ctx.comm_params.timeout_connect
    timer = loop.call_later(timeout, _no_answer, answer, timeout)
    try:
        response = await answer
    finally:
        timer.cancel()
    _check_answers(request.dev_id, tid, response)
    return response


def _no_answer(answer: asyncio.Future[ModbusPDU], timeout: float) -> None:
    if not answer.done():
        answer.set_exception(ModbusIOException(f"no answer within {timeout:g} s"))


def _check_answers(device_id: int, tid: int, response: ModbusPDU) -> None:
    """The answer is the request's (pymodbus's framer already skips other devices' frames
    and other transactions; these are ``execute``'s own checks, kept)."""
    if device_id and response.dev_id != device_id:
        raise ModbusIOException(f"asked device id {device_id}, answered by {response.dev_id}")
    if response.transaction_id and response.transaction_id != tid:
        raise ModbusIOException(
            f"asked in transaction {tid}, answered in {response.transaction_id}"
        )
