"""Modbus controller config: tag shapes and register overlaps, checked when the agent config
loads, each failure naming what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_agent_config
from agent.errors import ConfigError
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
