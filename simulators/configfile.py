"""Reading YAML config files into pydantic models with errors that name the file and the key.

Shared by the plant and scenario loaders so every config error reads the same way:
``config/plant.yaml: lines[0].controllers[1].port: Input should be a valid integer (fix: ...)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from simulators.errors import SimulatorError

M = TypeVar("M", bound=BaseModel)
#: libyaml's loader when present: a generated scale plant is megabytes of YAML.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def key_path(loc: tuple[int | str, ...]) -> str:
    """``('lines', 0, 'port')`` -> ``lines[0].port``: the key as a user finds it in the YAML."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "tagged-union")):
            continue
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def describe(path: Path | str, exc: ValidationError) -> str:
    """One line per problem, each naming the file, the key and how to fix it."""
    lines = []
    for err in exc.errors():
        where = key_path(tuple(err["loc"]))
        hint = (
            "remove it or check its spelling"
            if err["type"] == "extra_forbidden"
            else ("add it" if err["type"] == "missing" else "correct the value")
        )
        lines.append(f"{path}: {where}: {err['msg']} (fix: {hint})")
    return "\n".join(lines)


def read_yaml(path: Path | str, error: type[SimulatorError]) -> Any:
    """The parsed YAML document; unreadable or malformed files raise ``error`` naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read the file: {exc.strerror} (fix: check the path)") from exc
    try:
        return yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc} (fix: correct the YAML syntax)") from exc


def load_model(path: Path | str, model: type[M], error: type[SimulatorError]) -> M:
    """Validate a YAML file against ``model``; every problem is reported with file and key."""
    data = read_yaml(path, error)
    if not isinstance(data, dict):
        raise error(f"{path}: (top level): expected a mapping (fix: see the sample in config/)")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(describe(path, exc)) from exc
