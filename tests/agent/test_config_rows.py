"""Tags kept as rows after validation (`agent.config_rows`): the same checks, messages and
values as the settings models, in slots instead of pydantic instances."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from agent.config import load_agent_config
from agent.config_base import TagBase, TagSettings
from agent.config_rows import SettingsRow
from agent.errors import ConfigError
from agent.recipes import RecipeTag
from agent.sources.modbus import ModbusControllerConfig, ModbusTag
from agent.sources.modbus.config import ModbusTagSettings
from agent.sources.opcua import OpcuaTag

SPEC = {"name": "force_sp", "kind": "setpoint", "register": 40005, "data_type": "int32",
        "word_order": "little", "scale": 0.01}


def write(tmp_path: Path, tags: list[dict[str, Any]]) -> Path:
    data = {"agent": {"id": "edge-1", "site": "s", "state_dir": "state"},
            "controllers": [{"id": "plc-1", "protocol": "modbus", "tags": tags}]}
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_loaded_tag_is_a_row_with_the_values_its_settings_model_gives(tmp_path: Path) -> None:
    config = load_agent_config(write(tmp_path, [SPEC]))
    (tag,) = config.controllers[0].tags
    assert type(tag) is ModbusTag and not hasattr(tag, "__dict__")
    assert tag.model_dump() == ModbusTagSettings.model_validate(SPEC).model_dump()
    assert (tag.table, tag.address, tag.event_address, tag.register_count) == (
        "holding", 4, "holding:4", 2)


def test_a_bad_tag_is_named_by_its_key_and_fix_as_before(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_agent_config(write(tmp_path, [SPEC, {**SPEC, "name": "b", "data_type": "int33"}]))
    assert "controllers[0].tags[1].data_type: Input should be 'int16'" in str(err.value)
    assert "fix: use one of the listed values" in str(err.value)
    with pytest.raises(ConfigError, match=r"controllers\[0\]\.tags\[0\]: Value error, data_type "
                                          r"string needs `length`"):
        load_agent_config(write(tmp_path, [{**SPEC, "data_type": "string"}]))


def test_a_controller_dumps_and_loads_back_to_equal_rows() -> None:
    ctl = ModbusControllerConfig.model_validate(
        {"id": "plc-1", "protocol": "modbus", "tags": [SPEC, {**SPEC, "name": "b", "address": 9,
                                                             "register": None}]})
    again = ModbusControllerConfig.model_validate(ctl.model_dump(mode="json"))
    assert again == ctl and again.tags[1].address == 9
    # rows given as rows are taken as they are
    assert ModbusControllerConfig(id="p", protocol="modbus", tags=ctl.tags).tags[0] is ctl.tags[0]


def test_rows_are_frozen_and_compare_hash_copy_and_pickle_by_value() -> None:
    tag = ModbusTag.model_validate(SPEC)
    with pytest.raises(AttributeError, match="frozen"):
        tag.address = 5  # type: ignore[misc]
    same = ModbusTag.model_validate(SPEC)
    assert tag == same and hash(tag) == hash(same) and len({tag, same}) == 1
    assert tag != ModbusTag.model_validate({**SPEC, "scale": 1.0})
    assert copy.deepcopy(tag) is tag and pickle.loads(pickle.dumps(tag)) == tag
    moved = tag.model_copy(update={"address": 7})
    assert (moved.address, tag.address, moved.name) == (7, 4, "force_sp")


def test_model_validate_checks_like_the_settings_model() -> None:
    with pytest.raises(ValidationError, match="exactly one of node"):
        OpcuaTag.model_validate({"name": "t", "kind": "setpoint"})
    assert OpcuaTag.model_validate({"name": "t", "kind": "setpoint", "node": "ns=2;s=t"}).node


def test_a_recipe_tag_carries_its_members() -> None:
    tag = RecipeTag(name="r", critical_to_quality=True, members=("a", "b"))
    assert (tag.name, tag.kind, tag.members, tag.deadband) == ("r", None, ("a", "b"), 0.0)
    assert isinstance(tag, TagBase)


def test_a_row_whose_slots_miss_a_field_of_its_settings_is_refused() -> None:
    class Wider(TagSettings):
        extra: int = 0

    with pytest.raises(TypeError, match=r"missing \['extra'\]"):
        class Narrow(TagBase):
            __settings__: ClassVar[type[BaseModel]] = Wider
            __slots__ = ()

    assert issubclass(TagBase, SettingsRow)
