"""The register answers the agent's clients decode in one `struct` call give what pymodbus's
own answers give, for every frame (fuzzed), refuse the same frames, and are what a real
read through a line comes back as, with the registers the simulated PLC holds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
)

from agent.config import load_agent_config
from agent.sources.modbus import ModbusControllerConfig, ModbusLine
from agent.sources.modbus.line import _make_client
from agent.sources.modbus.plan import ReadRequest
from agent.sources.modbus.responses import HoldingRegistersAnswer, InputRegistersAnswer
from simulators.runtime import SimulatedPlant
from tests.agent.sources.factories import SAMPLE, modbus_controller, on_plant

PAIRS = [(ReadHoldingRegistersResponse, HoldingRegistersAnswer),
         (ReadInputRegistersResponse, InputRegistersAnswer)]


def pymodbus_registers(answer_type: type[ReadHoldingRegistersResponse], data: bytes) -> object:
    answer = answer_type()
    try:
        answer.decode(data)
    except ModbusIOException as exc:
        return ("refused", str(exc))
    return answer.registers


@st.composite
def answer_data(draw: st.DrawFn) -> bytes:
    """A byte count and a payload around it: too short, exact, or with bytes to spare."""
    count = draw(st.integers(0, 255))
    size = draw(st.integers(max(0, count - 2), count + 3))
    return bytes([count]) + draw(st.binary(min_size=size, max_size=size))


@settings(max_examples=400, deadline=None)
@given(data=answer_data(), pair=st.sampled_from(PAIRS))
def test_the_one_call_decode_agrees_with_pymodbus_on_every_frame(
    data: bytes, pair: tuple[type[ReadHoldingRegistersResponse], ...]
) -> None:
    """Byte counts odd, even, longer than the frame, full 125-register answers."""
    theirs, ours = pair
    assert pymodbus_registers(ours, data) == pymodbus_registers(theirs, data)


def test_the_text_of_an_answer_gives_the_count_not_the_values() -> None:
    answer = HoldingRegistersAnswer()
    answer.decode(bytes([4, 0x12, 0x34, 0xAB, 0xCD]))
    assert answer.registers == [0x1234, 0xABCD]
    assert str(answer) == "HoldingRegistersAnswer(2 registers)"


@pytest.mark.asyncio(loop_scope="module")
async def test_the_lines_clients_decode_both_register_tables_in_one_call() -> None:
    """Function codes 3 and 4 (the sample plant has no input registers to read for real)."""
    config = modbus_controller({"name": "a", "address": 0})
    client = _make_client(config)
    try:
        decoder = client.ctx.framer.decoder  # the client's own decoder, as a frame reaches it
        holding, inputs = decoder.decode(bytes([3, 2, 0, 7])), decoder.decode(bytes([4, 2, 0, 9]))
        other = AsyncModbusTcpClient("127.0.0.1").ctx.framer.decoder.decode(bytes([3, 2, 0, 7]))
    finally:
        client.close()
    assert type(holding) is HoldingRegistersAnswer and holding.registers == [7]
    assert type(inputs) is InputRegistersAnswer and inputs.registers == [9]
    assert type(other) is ReadHoldingRegistersResponse, "no other client is changed"


@pytest.mark.integration
@pytest.mark.asyncio(loop_scope="module")
async def test_a_read_through_a_line_is_answered_with_the_plcs_registers(
    plant: SimulatedPlant,
) -> None:
    config = load_agent_config(SAMPLE).controller("press-01")
    assert isinstance(config, ModbusControllerConfig)
    config = on_plant(config, plant)
    line = ModbusLine(config)
    bare = AsyncModbusTcpClient("127.0.0.1", port=config.port, retries=0, reconnect_delay=0)
    await line.attach(config.id)
    try:
        assert await bare.connect()
        answer = await line.read(config.device_id, ReadRequest("holding", 0, 14, ()), 0.0, "x")
        expected = await bare.read_holding_registers(0, count=14, device_id=config.device_id)
    finally:
        bare.close()
        line.detach()
    assert type(answer) is HoldingRegistersAnswer
    assert answer.registers == expected.registers and any(expected.registers)
