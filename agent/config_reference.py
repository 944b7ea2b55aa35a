"""The configuration reference (`config/REFERENCE.md`), generated from the pydantic models.

Every option of every config file, with its type, default and meaning, walked from the models
themselves so the page cannot miss an option: ``python -m agent.config_reference`` rewrites
the page, ``--check`` exits 1 when it is stale (the test in `tests/test_config_reference.py`
does the same). A field's meaning is its ``Field(description=...)`` or, as Sphinx reads them,
the ``#:`` comment lines right above it in the model's source.

Example::

    $ python -m agent.config_reference --check
    config/REFERENCE.md is up to date (428 options)
"""

from __future__ import annotations

import argparse
import enum
import inspect
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from agent.config_rows import SettingsRow

#: Where the page lives, beside the samples it describes.
REFERENCE = Path(__file__).resolve().parents[1] / "config" / "REFERENCE.md"


@dataclass(frozen=True)
class Option:
    """One key of a config file, as the page lists it."""

    key: str
    type: str
    default: str
    meaning: str


@dataclass(frozen=True)
class ConfigFile:
    """One kind of config file: its title, its sample, the command that reads it, its model."""

    title: str
    sample: str
    read_by: str
    model: type[BaseModel]


def config_files() -> list[ConfigFile]:
    """The config files of the product (imported here, not at module level: the reference is a
    developer's tool, and the classifier's models are not part of an agent-only install)."""
    from agent.config import AgentConfig
    from detectors.config import ClassifierConfig
    from detectors.criteria import Criteria
    from detectors.tickets.config import TicketsConfig
    from detectors.web.config import RecordsServiceConfig

    return [
        ConfigFile("Agent", "config/agent.yaml", "otwatch-agent", AgentConfig),
        ConfigFile("Classifier, SIEM relay", "config/classifier.yaml",
                   "otwatch-classifier, otwatch-siem", ClassifierConfig),
        ConfigFile("Classification criteria", "config/criteria.yaml",
                   "otwatch-classifier (classifier.criteria)", Criteria),
        ConfigFile("Records service", "config/records-ui.yaml", "otwatch-records serve",
                   RecordsServiceConfig),
        ConfigFile("Ticket connectors", "config/tickets.yaml",
                   "otwatch-tickets (and `otwatch-records serve`, `tickets:`)", TicketsConfig),
    ]


def options(model: type[BaseModel], prefix: str = "") -> Iterator[Option]:
    """Every option of ``model`` and of the sections under it, depth first, in source order."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{_key_name(name, field)}"
        yield Option(key, type_name(field.annotation), _default(field), meaning(model, name))
        for label, sub in _sub_models(field.annotation):
            yield from options(sub, f"{key}{label}.")


def _key_name(name: str, field: FieldInfo) -> str:
    if isinstance(field.alias, str):
        return field.alias
    choices = getattr(field.validation_alias, "choices", None)
    if choices and isinstance(choices[0], str):
        return choices[0]  # the spelling a config file uses first (ModbusTag's ``register``)
    return name


def _sub_models(annotation: Any) -> Iterator[tuple[str, type[BaseModel]]]:
    """The models a field holds, with the suffix their keys take (``[]`` inside a list, the
    discriminator's value inside a union of models)."""
    annotation = _settings_of(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield "", annotation
        return
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        yield from _sub_models(args[0])
    elif origin is list or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
        for label, sub in _sub_models(args[0]):
            yield f"[]{label}", sub
    elif origin is dict:
        for label, sub in _sub_models(args[1]):
            yield f".<name>{label}", sub
    elif origin in (typing.Union, types.UnionType):
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        for sub in models:
            yield (_variant(sub) if len(models) > 1 else ""), sub


def _settings_of(annotation: Any) -> Any:
    """A row of validated settings (`agent.config_rows`) stands for its settings model."""
    if isinstance(annotation, type) and issubclass(annotation, SettingsRow):
        return annotation.__settings__
    return annotation


def _variant(model: type[BaseModel]) -> str:
    """``(protocol: modbus)`` for one model of a discriminated union."""
    for name, field in model.model_fields.items():
        choices = typing.get_args(field.annotation)
        if typing.get_origin(field.annotation) is Literal and len(choices) == 1:
            return f" ({name}: {choices[0]})"
    return f" ({model.__name__})"


def type_name(annotation: Any) -> str:
    """A type as a reader of the YAML file thinks of it: ``int``, ``path``, ``"a" | "b"``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is Literal:
        return " \\| ".join(f"`{a}`" if not isinstance(a, str) else f'`"{a}"`' for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(type_name(a) for a in args)
    if origin is list or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
        return f"list of {type_name(args[0])}"  # a YAML list either way (tuple: frozen)
    if origin is dict:
        return f"map of {type_name(args[0])} to {type_name(args[1])}"
    if annotation is type(None):
        return "null"
    annotation = _settings_of(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f'`"{m.value}"`' for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(section)"
    if value is None:
        return "unset"
    if value is PydanticUndefined:
        return "**required**"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, tuple):
        value = _as_lists(value)  # written in YAML as a list, so shown as one
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value}`"


def _as_lists(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_as_lists(v) for v in value]
    return value


def meaning(model: type[BaseModel], name: str) -> str:
    """The field's description, or its ``#:`` comment in the first class of the model's MRO
    that declares it."""
    field = model.model_fields[name]
    if field.description:
        return " ".join(field.description.split())
    for cls in model.__mro__:
        if name in getattr(cls, "__annotations__", {}):
            text = _comments(cls).get(name)
            if text:
                return text
    sections = [sub for _, sub in _sub_models(field.annotation)]
    return _doc(sections[0]) if len(sections) == 1 else ""


@cache
def _comments(cls: type) -> dict[str, str]:
    """``#:`` comment blocks directly above each annotated attribute of ``cls``."""
    try:
        lines, _ = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return {}
    found: dict[str, str] = {}
    for n, line in enumerate(lines):
        stripped = line.strip()
        head = stripped.split(":", 1)[0]
        if ":" not in stripped or not head.isidentifier() or line[:1] != " ":
            continue
        block: list[str] = []
        above = n - 1
        while above >= 0 and lines[above].strip().startswith("#:"):
            block.insert(0, lines[above].strip()[2:].strip())
            above -= 1
        if block and head not in found:
            found[head] = " ".join(block)
    return found


def render() -> str:
    """The whole page."""
    out = [
        "# Configuration reference",
        "",
        "Generated from the configuration models by `python -m agent.config_reference`; do not",
        "edit by hand (`tests/test_config_reference.py` fails when this page is stale). Every",
        "file refuses unknown keys. Relative paths are read from the directory of the file.",
        "Secrets (Kafka TLS key and SASL passwords, the LDAP bind password) are never written",
        "in a config: name an environment variable (`*_env`) or a file (`*_file`).",
        "",
        "Modbus addresses: `address` is the 0-based protocol address in `table` (what travels",
        "in the request); `register: 40001` is the 1-based register number a manual prints",
        "(holding address 0). See README, \"Modbus addresses\".",
        "",
    ]
    for config in config_files():
        out += [
            f"## {config.title} (`{config.sample}`)",
            "",
            f"Read by `{config.read_by}`. {_doc(config.model)}".rstrip(),
            "",
            "| key | type | default | meaning |",
            "| --- | --- | --- | --- |",
        ]
        out += [
            f"| `{o.key}` | {o.type} | {o.default} | {o.meaning.replace('|', chr(92) + '|')} |"
            for o in options(config.model)
        ]
        out.append("")
    return "\n".join(out)


def _doc(model: type[BaseModel]) -> str:
    """The first paragraph of the model's own docstring (not one it inherits)."""
    doc = inspect.cleandoc(model.__dict__.get("__doc__") or "")
    return " ".join(doc.split("\n\n")[0].split())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent.config_reference",
        description="Write config/REFERENCE.md from the configuration models.",
    )
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 when the page is stale")
    parser.add_argument("--output", type=Path, default=REFERENCE)
    args = parser.parse_args(argv)
    text = render()
    count = sum(len(list(options(c.model))) for c in config_files())
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale; fix: python -m agent.config_reference",
                  file=sys.stderr)
            return 1
        print(f"{args.output} is up to date ({count} options)")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({count} options)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
