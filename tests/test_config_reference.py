"""The configuration reference (config/REFERENCE.md) lists every option of every model, with a
meaning, and is regenerated when a model changes; the samples show every option."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from agent.config_reference import REFERENCE, ConfigFile, config_files, main, options, render

ROOT = Path(__file__).parents[1]
CONFIGS = config_files()


def test_the_page_is_current() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == render(), (
        "config/REFERENCE.md is stale; fix: python -m agent.config_reference"
    )


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.sample)
def test_every_model_option_is_on_the_page_with_a_meaning(config: ConfigFile) -> None:
    page = REFERENCE.read_text(encoding="utf-8")
    for option in options(config.model):
        assert f"| `{option.key}` |" in page, f"{option.key} is not in config/REFERENCE.md"
        assert option.meaning, (
            f"{config.sample}: {option.key} has no meaning; fix: add a `#:` comment or "
            "Field(description=...) above it in its model"
        )


def _walk(model: type[BaseModel], prefix: str = "") -> set[str]:
    """The dotted names of every field, found independently of the generator's own walk."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        key = prefix + name
        keys.add(key)
        for sub in _models_in(field.annotation):
            keys |= _walk(sub, key + ".")
    return keys


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.sample)
def test_no_field_is_missed(config: ConfigFile) -> None:
    """Every field of the model tree (by attribute name) ends a key of the reference."""
    listed = {re.sub(r"\[\]|\(.*?\)|\.<name>| ", "", o.key)
              for o in options(config.model)}
    aliases = {"schema_name": "schema", "register_number": "register"}
    for key in _walk(config.model):
        for attr, alias in aliases.items():
            key = key.replace(attr, alias)
        assert key in listed, f"{key} is missing from the reference"


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.sample)
def test_the_sample_shows_every_option(config: ConfigFile) -> None:
    """Each option's key is written in the sample, set or commented out with its meaning."""
    text = (ROOT / config.sample).read_text(encoding="utf-8")
    written = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*):", text))
    for option in options(config.model):
        name = re.sub(r"\(.*?\)|\[\]| ", "", option.key).rsplit(".", 1)[-1]
        assert name in written, f"{config.sample} does not show {option.key}"


def test_issue_options_are_in_the_agent_sample() -> None:
    text = (ROOT / "config" / "agent.yaml").read_text(encoding="utf-8")
    for key in ("request_timeout_ms", "retry_backoff_ms", "linger_ms", "max_batch_size",
                "reconnect_backoff_max_s", "create_topics", "topic_partitions",
                "topic_replication_factor", "key_password_env", "from_topic",
                "reconnect_max_s", "monitoring_gap_min_s", "max_items_per_call",
                "max_events", "max_bytes"):
        assert re.search(rf"\b{key}:", text), key


class _Documented(BaseModel):
    #: A meaning from a comment.
    commented: int = 1
    described: str = Field(default="x", description="A meaning from the field.")
    bare: bool = False


def test_meanings_come_from_comments_and_descriptions() -> None:
    found = {o.key: o for o in options(_Documented)}
    assert found["commented"].meaning == "A meaning from a comment."
    assert found["described"].meaning == "A meaning from the field."
    assert found["bare"].meaning == ""
    assert (found["commented"].type, found["commented"].default) == ("int", "`1`")


def test_check_fails_on_a_stale_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "REFERENCE.md"
    stale.write_text(render().replace("| `kafka.linger_ms` |", "| `kafka.gone` |"))
    assert main(["--check", "--output", str(stale)]) == 1
    assert "stale" in capsys.readouterr().err
    assert main(["--output", str(stale)]) == 0
    assert main(["--check", "--output", str(stale)]) == 0
