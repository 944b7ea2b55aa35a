"""Modbus controller config, checked when the agent config loads, each failure naming what to
fix: tag shapes and register overlaps, transports and serial lines (devices on one line share
its settings and have their own unit ids), and addresses (0-based protocol addresses; register
numbers such as 40001 as ``register:``; an address that looks like one is refused)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.config import load_agent_config
from agent.errors import ConfigError
from agent.sources.modbus import ModbusControllerConfig, ModbusTag
from tests.agent.sources.factories import SAMPLE
from tests.agent.sources.factories import sample_config as sample
from tests.agent.sources.factories import write_config as write


@pytest.mark.parametrize(
    ("tags", "words"),
    [
        (
            [
                {"name": "a", "kind": "setpoint", "address": 0},
                {"name": "a", "kind": "setpoint", "address": 1},
            ],
            "tag name 'a' appears twice",
        ),
        (
            [
                {"name": "a", "kind": "setpoint", "address": 0, "data_type": "float32"},
                {"name": "b", "kind": "setpoint", "address": 1},
            ],
            "both use holding register 1",
        ),
        (
            [{"name": "s", "kind": "setpoint", "address": 0, "data_type": "string"}],
            "needs `length`",
        ),
        ([{"name": "c", "kind": "mode", "address": 0, "table": "coil"}], "set data_type: bool"),
        ([{"name": "x", "address": 0}], "a tag needs `kind`"),
    ],
)
def test_cross_field_checks(tmp_path: Path, tags: list[dict[str, object]], words: str) -> None:
    data = sample()
    data["controllers"][0]["tags"] = tags  # type: ignore[index]
    data["controllers"][0]["recipes"] = []  # type: ignore[index]
    with pytest.raises(ConfigError, match=words):
        load_agent_config(write(tmp_path, data))


def serial_device(controller_id: str, device_id: int, **extra: object) -> dict[str, object]:
    """A device on serial line /dev/ttyUSB0 (19200 8E1, the default), one holding tag."""
    return {
        "id": controller_id, "protocol": "modbus", "transport": "serial",
        "serial": {"port": "/dev/ttyUSB0"}, "device_id": device_id,
        "tags": [{"name": "speed_sp", "kind": "setpoint", "address": 0}], **extra,
    }


def load_controllers(tmp_path: Path, *controllers: dict[str, object]) -> list[object]:
    data = {"agent": {"id": "edge-x", "site": "plant-x"}, "controllers": list(controllers)}
    return list(load_agent_config(write(tmp_path, data)).controllers)


def test_devices_on_one_serial_line_and_their_endpoints(tmp_path: Path) -> None:
    one, two, gateway = load_controllers(
        tmp_path,
        serial_device("dryer-01", 1),
        serial_device("dryer-02", 2, serial={"port": "/dev/ttyUSB0/", "parity": "even"}),
        {"id": "mixer-01", "protocol": "modbus", "transport": "rtu_over_tcp",
         "host": "10.0.0.9", "port": 4001, "device_id": 7,
         "tags": [{"name": "speed_sp", "kind": "setpoint", "address": 0}]},
    )
    assert isinstance(one, ModbusControllerConfig) and isinstance(two, ModbusControllerConfig)
    assert isinstance(gateway, ModbusControllerConfig)
    assert one.line_key == two.line_key == ("serial", "/dev/ttyUSB0")
    assert one.serial is not None and one.serial.character_format == "19200 8E1 RTU"
    assert (one.endpoint, gateway.endpoint) == (
        "modbus+rtu:/dev/ttyUSB0/1", "modbus+rtu://10.0.0.9:4001/7"
    )


@pytest.mark.parametrize(
    ("controllers", "words"),
    [
        (
            [serial_device("dryer-01", 1), serial_device("dryer-02", 1)],
            r"controllers\[1\] \(dryer-02\) and controllers\[0\] \(dryer-01\) are both "
            r"device_id 1 on serial port /dev/ttyUSB0; fix: give each device on a line its own",
        ),
        (
            [serial_device("dryer-01", 1),
             serial_device("dryer-02", 2, serial={"port": "/dev/ttyUSB0", "baudrate": 9600})],
            r"are on one line \(serial port /dev/ttyUSB0\) but differ in serial.baudrate; one "
            r"connection serves a line.*fix: give both the same serial.baudrate",
        ),
        (
            [serial_device("dryer-01", 1), serial_device("dryer-02", 2, timeout_s=5)],
            r"differ in timeout_s",
        ),
        (
            [{"id": "a", "protocol": "modbus", "port": 4001,
              "tags": [{"name": "s", "kind": "setpoint", "address": 0}]},
             {"id": "b", "protocol": "modbus", "transport": "rtu_over_tcp", "port": 4001,
              "tags": [{"name": "s", "kind": "setpoint", "address": 0}]}],
            r"controllers\[1\] \(b\) uses transport rtu_over_tcp and controllers\[0\] \(a\) "
            r"transport tcp at one address, 127.0.0.1:4001",
        ),
        ([serial_device("dryer-01", 0)], r"device_id 0 cannot be a device on a serial line"),
        ([serial_device("dryer-01", 248)], r"248-255 are reserved\); fix: set device_id"),
        (
            [{**serial_device("dryer-01", 1), "serial": None}],
            r"transport serial needs `serial:` with at least its port",
        ),
        ([serial_device("dryer-01", 1, port=1502)], r"host and port are for transport tcp"),
        (
            [{**serial_device("dryer-01", 1), "transport": "tcp"}],
            r"`serial:` settings are for transport serial, but transport is tcp",
        ),
        (
            [serial_device("dryer-01", 1, serial={"port": "/dev/ttyS0", "bytesize": 7})],
            r"mode rtu sends 8 data bits; fix: bytesize: 8",
        ),
        (
            [serial_device("dryer-01", 1, serial={"port": "/dev/ttyS0", "parity": "M"})],
            r"serial.parity: Input should be 'N', 'E' or 'O'",
        ),
        (
            [{**serial_device("dryer-01", 1), "transport": "ascii_over_tcp"}],
            r"transport: Input should be 'tcp', 'rtu_over_tcp' or 'serial'",
        ),
    ],
)
def test_serial_line_checks(
    tmp_path: Path, controllers: list[dict[str, object]], words: str
) -> None:
    with pytest.raises(ConfigError, match=words):
        load_controllers(tmp_path, *controllers)


def test_ascii_mode_takes_seven_data_bits(tmp_path: Path) -> None:
    (ctl,) = load_controllers(tmp_path, serial_device(
        "dryer-01", 1, serial={"port": "/dev/ttyS0", "mode": "ascii", "bytesize": 7}
    ))
    assert isinstance(ctl, ModbusControllerConfig) and ctl.endpoint == "modbus+ascii:/dev/ttyS0/1"


def one_tag(tmp_path: Path, tag: dict[str, object], **controller: object) -> ModbusTag:
    (ctl,) = load_controllers(tmp_path, {
        "id": "plc-x", "protocol": "modbus", "tags": [{"name": "t", "kind": "setpoint", **tag}],
        **controller,
    })
    assert isinstance(ctl, ModbusControllerConfig)
    return ctl.tags[0]


@pytest.mark.parametrize(
    ("tag", "table", "address"),
    [
        ({"register": 40001}, "holding", 0),
        ({"register": 40001, "table": "holding"}, "holding", 0),
        ({"register": 30010, "data_type": "int16"}, "input", 9),
        ({"register": 10002, "data_type": "bool"}, "discrete", 1),
        ({"register": 17, "data_type": "bool"}, "coil", 16),
        ({"register": 465536}, "holding", 65535),
        ({"register": 40001, "address": 0}, "holding", 0),  # both, agreeing (a dumped config)
        ({"address": 40001}, "holding", 40001),  # with high_protocol_addresses, below
    ],
)
def test_register_numbers_become_table_and_address(
    tmp_path: Path, tag: dict[str, object], table: str, address: int
) -> None:
    high = tag.get("address") == 40001 and "register" not in tag
    got = one_tag(tmp_path, tag, high_protocol_addresses=high)
    assert (got.table, got.address, got.event_address) == (table, address, f"{table}:{address}")


@pytest.mark.parametrize(
    ("tag", "words"),
    [
        (
            {"address": 40001},
            r"tags\[0\] \(t\): address 40001 looks like a holding register number \(counted "
            r"from 1\), but `address` is the 0-based protocol address; fix: write `register: "
            r"40001` \(the agent then reads holding address 0\) or `address: 0`; if 40001 "
            r"really is the device's protocol address, set high_protocol_addresses: true",
        ),
        ({"address": 30005, "table": "input"}, r"looks like an input register number"),
        ({"address": 10001, "table": "coil", "data_type": "bool"}, r"a discrete register number"),
        (
            {"address": 400001},
            r"address 400001 is more than 65535: it looks like the register number of holding "
            r"address 0; fix: write `register: 400001`, or `address: 0`",
        ),
        ({"address": 70000}, r"less than or equal to 65535"),
        (
            {"register": 40001, "address": 3},
            r"give `address` \(0-based protocol address\) or `register`",
        ),
        (
            {"register": 40001, "table": "input"},
            r"register 40001 is a holding register number, but table is 'input'; fix: remove "
            r"`table`",
        ),
        ({"register": 20001}, r"register 20001 is not a Modbus register number \(00001-09999"),
        ({"register": 40000}, r"register 40000 is not a Modbus register number"),
    ],
)
def test_addresses_that_look_like_register_numbers_are_refused(
    tmp_path: Path, tag: dict[str, object], words: str
) -> None:
    with pytest.raises(ConfigError, match=words):
        one_tag(tmp_path, tag)


def rtu_example() -> list[dict[str, object]]:
    """The commented Modbus RTU controllers of config/agent.yaml, uncommented."""
    lines = SAMPLE.read_text().splitlines()
    start = lines.index("  # - id: dryer-01")
    block = []
    for line in lines[start:]:
        if not line.startswith("  # "):
            break
        block.append("  " + line[4:])
    return yaml.safe_load("\n".join(block))  # type: ignore[no-any-return]


def test_the_samples_rtu_example_loads(tmp_path: Path) -> None:
    """The sample's commented RTU example is a config, not prose that can rot."""
    data = sample()
    data["controllers"] += rtu_example()  # type: ignore[operator]
    config = load_agent_config(write(tmp_path, data))
    dryer1, dryer2, mixer = (config.controller(c) for c in ("dryer-01", "dryer-02", "mixer-01"))
    assert isinstance(dryer1, ModbusControllerConfig) and isinstance(dryer2, ModbusControllerConfig)
    assert dryer1.line_key == dryer2.line_key and dryer1.tags[0].event_address == "holding:0"
    assert isinstance(mixer, ModbusControllerConfig) and mixer.transport == "rtu_over_tcp"


def test_a_dumped_config_loads_again(tmp_path: Path) -> None:
    """Tests and tools write a loaded config back out (model_dump_json): register numbers
    and serial controllers, with every default spelled out, load again as they were."""
    case = Path(__file__).parent / "testcases" / "rtu-serial-line" / "agent.yaml"
    config = load_agent_config(case)
    dumped = tmp_path / "agent.json"
    dumped.write_text(config.model_dump_json())
    assert load_agent_config(dumped) == config
