"""Fuzzing the agent config loader (hypothesis): any YAML mapping, any text, any bytes, and the
sample config with any one value replaced, removed or added give either a valid config or a
`ConfigError` whose every line names the file (and the key, where there is one); never another
exception."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config import AgentConfig, load_agent_config
from agent.errors import ConfigError
from tests.agent.sources.factories import sample_config

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SAMPLE = sample_config()

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the sample config: keys of mappings, indexes of lists."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            out += paths(child, (*prefix, key))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            out += paths(child, (*prefix, i))
    return out


PATHS = paths(SAMPLE)


def load(tmp_path: Path, text: str | bytes) -> AgentConfig | ConfigError:
    path = tmp_path / "agent.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        return load_agent_config(path)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            assert line.startswith(f"{path}: ") or line.startswith("  "), line
        return exc


def mutated(path: tuple[Any, ...], action: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(SAMPLE)
    node = data
    for part in path[:-1]:
        node = node[part]
    last = path[-1]
    if action == "delete":
        del node[last]
    elif action == "add" and isinstance(node, dict):
        node[f"extra_{last}"] = value
    else:
        node[last] = value
    return data  # type: ignore[no-any-return]


@FUZZ
@given(st.sampled_from(PATHS), st.sampled_from(["replace", "delete", "add"]), values)
def test_the_sample_with_one_thing_changed(
    tmp_path: Path, path: tuple[Any, ...], action: str, value: Any
) -> None:
    result = load(tmp_path, yaml.safe_dump(mutated(path, action, value)))
    if isinstance(result, ConfigError) and action != "add":
        key = str(path[-1])
        assert key in str(result) or "[" in str(result) or "(top level)" in str(result)


@FUZZ
@given(st.dictionaries(st.text(max_size=10), values, max_size=6))
def test_any_mapping(tmp_path: Path, data: dict[str, Any]) -> None:
    load(tmp_path, yaml.safe_dump(data))


@FUZZ
@given(st.text(max_size=200))
def test_any_text(tmp_path: Path, text: str) -> None:
    load(tmp_path, text)


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes(tmp_path: Path, raw: bytes) -> None:
    load(tmp_path, raw)


@pytest.mark.parametrize(
    "text",
    [
        "agent: {id: a, site: s}\ncontrollers: []\nstamp: 2001-13-45\n",  # a date YAML rejects
        "a: &x [*x]\n",  # a list that holds itself
        "[" * 5000 + "]" * 5000,  # deeper than a parser's stack
        "\ufeffagent: 1\n",
    ],
)
def test_yaml_that_trips_the_parser(tmp_path: Path, text: str) -> None:
    assert isinstance(load(tmp_path, text), ConfigError)
