"""Agent config: the sample loads; bad files fail with the file, the key and the fix.

The Modbus tag and register checks are in tests/agent/sources/modbus/test_config.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import main as agent_main
from agent.config import load_agent_config
from agent.errors import ConfigError
from tests.agent.sources.factories import SAMPLE
from tests.agent.sources.factories import sample_config as sample
from tests.agent.sources.factories import write_config as write


def test_sample_loads_and_resolves_relative_paths() -> None:
    config = load_agent_config(SAMPLE)
    assert config.agent.site == "plant-1"
    assert [c.id for c in config.controllers] == ["press-01", "press-02", "oven-01"]
    assert config.approvals.files == [SAMPLE.parent.resolve() / "approvals.yaml"]


def test_spool_limits_come_from_the_config(tmp_path: Path) -> None:
    from agent.state_cli import _open as open_spool

    data = sample()
    data["agent"]["state_dir"] = str(tmp_path / "state")
    data["spool"] = {"max_events": 2000, "max_bytes": 2**21}
    config = load_agent_config(write(tmp_path, data))
    (tmp_path / "state").mkdir()
    spool = open_spool(config)
    assert (spool.max_events, spool.max_bytes) == (2000, 2**21)
    assert load_agent_config(SAMPLE).spool.max_bytes == 512 * 2**20


def mutate(data: dict, path: str, value: object) -> None:  # type: ignore[type-arg]
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is DELETE:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "key", "fix"),
    [
        ("agent.colour", "blue", "agent.colour", "remove this key"),
        ("agent.id", DELETE, "agent.id", "add this key"),
        (
            "controllers.0.tags.0.data_type",
            "float16",
            "controllers[0].tags[0].data_type",
            "listed values",
        ),
        (
            "controllers.0.protocol",
            "profinet",
            "controllers[0]",
            "protocol: modbus or protocol: opcua",
        ),
        ("controllers.0.port", 70000, "controllers[0].port", "correct the value"),
        ("controllers.2.endpoint", "http://x", "controllers[2].endpoint", "correct the value"),
        ("spool.max_events", 10, "spool.max_events", "correct the value"),
    ],
)
def test_bad_values_name_file_key_and_fix(
    tmp_path: Path, path: str, value: object, key: str, fix: str
) -> None:
    data = sample()
    mutate(data, path, value)
    cfg = write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_agent_config(cfg)
    message = str(err.value)
    assert str(cfg) in message and key in message and fix in message


def test_recipe_group_must_name_known_tags(tmp_path: Path) -> None:
    data = sample()
    data["controllers"][0]["recipes"][0]["parameter_tags"].append("nozzle_temp")  # type: ignore[index]
    with pytest.raises(
        ConfigError, match=r"recipes\[0\] \(active_recipe\) names tag 'nozzle_temp'"
    ):
        load_agent_config(write(tmp_path, data))


def test_a_measurement_is_read_but_never_a_change_nor_a_recipe_member(tmp_path: Path) -> None:
    press = load_agent_config(SAMPLE).controller("press-01")
    (actual,) = [t for t in press.tags if t.name == "pressure_actual"]
    assert actual.is_measurement and not actual.is_watched
    data = sample()
    data["controllers"][0]["recipes"][0]["parameter_tags"].append("pressure_actual")  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"names tag 'pressure_actual', a measurement .*fix:"):
        load_agent_config(write(tmp_path, data))


def test_a_measurement_cannot_take_the_key_of_a_context_role(tmp_path: Path) -> None:
    data = sample()
    data["controllers"][0]["tags"].append(  # type: ignore[index]
        {"name": "batch", "kind": "measurement", "address": 30})
    with pytest.raises(ConfigError, match=r"tags\[\d+\]: .*'batch' is the key of a context "
                                          r"role; fix: rename the tag"):
        load_agent_config(write(tmp_path, data))


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_agent_config(write(tmp_path, "agent: [unclosed"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_agent_config(tmp_path / "nope.yaml")


def test_check_prints_the_read_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert agent_main(["check", "--config", str(SAMPLE)]) == 0
    out = capsys.readouterr().out
    assert (
        "read holding 0..13 (14): temperature_sp, pressure_sp, recipe_no, lot_counter, speed_sp"
        in out
    )
    assert "read coil 0..1 (2): auto_mode, maintenance_mode" in out


def test_check_exits_2_on_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = sample()
    data["agent"]["colour"] = "blue"  # type: ignore[index]
    assert agent_main(["check", "--config", str(write(tmp_path, data))]) == 2
    assert "agent.colour" in capsys.readouterr().err
