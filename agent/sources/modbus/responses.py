"""Register answers decoded with one `struct` call, for the clients the lines make.

pymodbus (3.16) decodes a read-registers answer with one ``struct.unpack`` and one slice per
register, and formats the whole answer, every register included, for a debug message that
is dropped unless pymodbus logs at DEBUG: on a 125-register answer that is most of the
client's own work, and the agent reads every register of its plan on every scan. The two
classes here are pymodbus's own answers for function codes 3 and 4 with a decode that gives
the same registers (and refuses the same short frames) with one `struct.Struct.unpack_from`,
and a text that gives the register count instead of the values (pymodbus's debug log of the
raw frame still shows them, in hex). `register_fast_answers` puts them in a client's decoder
through pymodbus's documented extension point, `ModbusBaseClient.register`; they touch no
other client and never send anything.
"""

from __future__ import annotations

import struct

from pymodbus.client.base import ModbusBaseClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
)

#: One compiled format per register count an answer can carry (a byte count is one byte).
_WORDS = [struct.Struct(f">{n}H") for n in range(128)]


def unpack_registers(data: bytes, function_code: int) -> list[int]:
    """The registers of a read-registers answer's data (byte count, then the bytes), as
    pymodbus reads them: ``byte count // 2`` registers, big-endian; a byte count that is
    not shorter than the data raises pymodbus's `ModbusIOException`."""
    count = data[0]
    if count >= len(data):
        raise ModbusIOException(
            f"byte_count {count} > length of packet {len(data)}", function_code=function_code
        )
    return list(_WORDS[count // 2].unpack_from(data, 1))


def _text(answer: ReadHoldingRegistersResponse) -> str:
    # pymodbus asks for it right after `decode`, before it sets the unit and transaction ids
    return f"{type(answer).__name__}({len(answer.registers)} registers)"


class HoldingRegistersAnswer(ReadHoldingRegistersResponse):
    """A read-holding-registers answer (function code 3), decoded in one call."""

    def decode(self, data: bytes) -> None:
        self.registers = unpack_registers(data, self.function_code)

    def __str__(self) -> str:
        return _text(self)


class InputRegistersAnswer(ReadInputRegistersResponse):
    """A read-input-registers answer (function code 4), decoded in one call."""

    def decode(self, data: bytes) -> None:
        self.registers = unpack_registers(data, self.function_code)

    def __str__(self) -> str:
        return _text(self)


def register_fast_answers(client: ModbusBaseClient) -> None:
    """Have ``client`` decode register answers with the classes above (its own decoder only)."""
    client.register(HoldingRegistersAnswer)
    client.register(InputRegistersAnswer)
