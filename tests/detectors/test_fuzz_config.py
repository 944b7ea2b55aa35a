"""Fuzzing the classifier config loader (issue 14, fuzzing): whatever the file holds, the
result is a valid config or a `ClassifierConfigError` that names the file (and the key, when
one is to blame); never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.config import ClassifierConfig, load_classifier_config
from detectors.errors import ClassifierConfigError

SAMPLE: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parents[2] / "config" / "classifier.yaml").read_text())
SECTIONS = ("classifier", "kafka", "topics", "metrics", "integrity")

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats() | st.text(max_size=30))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, Any]:
    """The sample config with one key of one section replaced, removed or added."""
    config = yaml.safe_load(yaml.safe_dump(SAMPLE))
    section = draw(st.sampled_from(SECTIONS))
    body = config.setdefault(section, {})
    key = draw(st.sampled_from(sorted(body)) | st.text(min_size=1, max_size=12))
    if draw(st.booleans()):
        body[key] = draw(values | st.just("a\x00b") | st.just("../" * 40) | st.just(-1))
    else:
        body.pop(key, None)
    return config


texts = st.text(max_size=200) | st.sampled_from([
    "[" * 2000, "classifier: !!python/object:os.system x",
    "a: 2020-02-30", "a: &x [*x]", "\x00", "classifier:\n  records_db: 'a\\0b'",
    "- 1\n- 2", "just text", "classifier: [1, 2]", "classifier:\n  criteria: \"\\0\"",
])


def load(text: str) -> ClassifierConfig | str:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "classifier.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            return load_classifier_config(path)
        except ClassifierConfigError as exc:
            message = str(exc)
            assert all(line.startswith(f"{path}: ") for line in message.splitlines()), message
            assert "fix: " in message, message
            return message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=near_valid())
def test_a_near_valid_config_loads_or_names_the_file_and_the_key(config: dict[str, Any]) -> None:
    result = load(yaml.safe_dump(config, allow_unicode=True))
    if isinstance(result, str):
        assert any(f": {section}" in result for section in SECTIONS), result


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=values)
def test_any_yaml_document_loads_or_names_the_file(data: Any) -> None:
    load(yaml.safe_dump(data, allow_unicode=True))


@settings(max_examples=100, deadline=None)
@given(text=texts)
def test_any_text_loads_or_names_the_file(text: str) -> None:
    load(text)
