"""The simulated Modbus PLC, read and written by an independent pymodbus client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from simulators.broker import free_port
from simulators.modbus_plc import ModbusPLC
from simulators.plant import PlantConfig
from tests.simulators.conftest import modbus_config

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(press: ModbusPLC) -> AsyncIterator[AsyncModbusTcpClient]:
    c = AsyncModbusTcpClient("127.0.0.1", port=press.port, timeout=1, retries=0)
    await c.connect()
    try:
        yield c
    finally:
        c.close()


async def test_initial_values_scaling_and_word_order(client: AsyncModbusTcpClient) -> None:
    rr = await client.read_holding_registers(0, count=7, device_id=1)
    regs = rr.registers
    f32 = client.DATATYPE.FLOAT32
    assert client.convert_from_registers(regs[0:2], data_type=f32, word_order="big") == 180.0
    assert regs[2] == 125  # 12.5 bar, x10
    assert regs[3] == 1
    u32 = client.DATATYPE.UINT32
    assert client.convert_from_registers(regs[4:6], data_type=u32, word_order="big") == 1000
    assert regs[6] == 1200
    coils = await client.read_coils(0, count=1, device_id=1)
    assert coils.bits[0] is True


async def test_a_scenario_write_is_seen_by_clients_and_not_counted(
    press: ModbusPLC, client: AsyncModbusTcpClient
) -> None:
    await press.write("temperature_sp", 185.0)
    await press.write("pressure_sp", 13.7)
    await press.write("auto_mode", False)
    rr = await client.read_holding_registers(0, count=3, device_id=1)
    f32 = client.DATATYPE.FLOAT32
    assert client.convert_from_registers(rr.registers[0:2], data_type=f32) == 185.0
    assert rr.registers[2] == 137
    assert (await client.read_coils(0, count=1, device_id=1)).bits[0] is False
    assert press.foreign_writes == 0


async def test_every_client_write_request_is_counted(
    press: ModbusPLC, client: AsyncModbusTcpClient
) -> None:
    await client.write_register(6, 1300, device_id=1)
    regs = client.convert_to_registers(190.0, data_type=client.DATATYPE.FLOAT32)
    await client.write_registers(0, regs, device_id=1)
    await client.write_coil(0, False, device_id=1)
    refused = await client.write_register(500, 1, device_id=1)  # no such register
    assert refused.isError()
    assert press.foreign_writes == 4
    assert await press.read("speed_sp") == 1300
    assert await press.read("temperature_sp") == 190.0
    assert await press.read("auto_mode") is False


async def test_reads_are_not_counted(press: ModbusPLC, client: AsyncModbusTcpClient) -> None:
    for _ in range(3):
        await client.read_holding_registers(0, count=7, device_id=1)
    assert press.foreign_writes == 0


@pytest.mark.parametrize(("fault", "code"), [("device_busy", 6), ("illegal_address", 2)])
async def test_exception_responses(
    press: ModbusPLC, client: AsyncModbusTcpClient, fault: str, code: int
) -> None:
    press.faults.exception = fault
    rr = await client.read_holding_registers(0, count=2, device_id=1)
    assert rr.isError() and rr.exception_code == code
    assert await press.read("temperature_sp") == 180.0  # the plant side is unaffected
    press.faults.exception = None
    assert not (await client.read_holding_registers(0, count=2, device_id=1)).isError()


async def test_slow_responses_outlast_a_short_client_timeout(press: ModbusPLC) -> None:
    impatient = AsyncModbusTcpClient("127.0.0.1", port=press.port, timeout=0.2, retries=0)
    await impatient.connect()
    try:
        press.faults.delay_s = 1.0
        with pytest.raises(ModbusException):
            await impatient.read_holding_registers(0, count=2, device_id=1)
    finally:
        impatient.close()
        press.faults.delay_s = 0.0


async def test_dropped_connections_and_restart_keep_values(
    press: ModbusPLC, client: AsyncModbusTcpClient
) -> None:
    await press.write("speed_sp", 1400)
    assert press.drop_connections() == 1
    await press.restart()
    again = AsyncModbusTcpClient("127.0.0.1", port=press.port, timeout=1, retries=0)
    await again.connect()
    try:
        rr = await again.read_holding_registers(6, count=1, device_id=1)
        assert rr.registers == [1400]
    finally:
        again.close()


async def test_a_stopped_plc_refuses_connections(press: ModbusPLC) -> None:
    await press.stop()
    press.set_stored("recipe_no", 7)
    c = AsyncModbusTcpClient("127.0.0.1", port=press.port, timeout=0.5, retries=0)
    assert not await c.connect()
    c.close()
    await press.start()
    assert await press.read("recipe_no") == 7


async def test_press_02_uses_little_word_order(plant_config: PlantConfig) -> None:
    plc = ModbusPLC(modbus_config(plant_config, "press-02"), free_port())
    await plc.start()
    c = AsyncModbusTcpClient("127.0.0.1", port=plc.port, timeout=1, retries=0)
    try:
        await c.connect()
        rr = await c.read_holding_registers(0, count=4, device_id=1)
        f32, i32 = c.DATATYPE.FLOAT32, c.DATATYPE.INT32
        temp = c.convert_from_registers(rr.registers[0:2], data_type=f32, word_order="little")
        force = c.convert_from_registers(rr.registers[2:4], data_type=i32, word_order="little")
        assert (temp, force) == (175.0, 25025)
    finally:
        c.close()
        await plc.stop()


async def test_a_gateway_serves_several_device_ids(plant_config: PlantConfig) -> None:
    plc = ModbusPLC(modbus_config(plant_config, "gateway-01"), free_port())
    await plc.start()
    c = AsyncModbusTcpClient("127.0.0.1", port=plc.port, timeout=1, retries=0)
    try:
        await c.connect()
        dryer = await c.read_holding_registers(0, count=1, device_id=1)
        conveyor = await c.read_holding_registers(0, count=1, device_id=2)
        assert (dryer.registers, conveyor.registers) == ([650], [900])
        await plc.write("conveyor_speed_sp", 950)
        conveyor = await c.read_holding_registers(0, count=1, device_id=2)
        assert conveyor.registers == [950]
        assert await plc.read("dryer_temperature_sp") == 65.0
    finally:
        c.close()
        await plc.stop()
