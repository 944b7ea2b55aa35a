"""Reading approvals files (YAML or JSON) into records, with errors that name file, key and fix.

Example of an error a user sees::

    config/approvals.yaml: approvals[2].valid_until: Input should have timezone info
    (fix: write UTC with a Z, e.g. 2026-11-23T20:00:00Z, or an explicit offset like +01:00)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from agent.approvals.errors import ApprovalsFileError
from agent.approvals.model import EXPECTED_TAGS, ApprovalsDocument, ApprovedChange

_HINTS = {
    "extra_forbidden": "remove it or check its spelling",
    "missing": "add it",
    "timezone_aware": (
        "write UTC with a Z, e.g. 2026-11-23T20:00:00Z, or an explicit offset like +01:00"
    ),
    "expected_form": "use {exact: 185.0}, {min: 180.0, max: 185.0}, {checksum: 9f2c4e1a}, "
    "{recipe_id: R-100, recipe_version: 3} (a switch) or {parameters: {temperature: 210.0}} "
    "(an edit)",
}


def key_path(loc: tuple[int | str, ...]) -> str:
    """``('approvals', 2, 'valid_until')`` -> ``approvals[2].valid_until``, as in the file."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in EXPECTED_TAGS or part.startswith(("function-", "tagged-union")):
            continue
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def describe_errors(source: str, exc: ValidationError, prefix: tuple[int | str, ...] = ()) -> str:
    """One line per problem, each naming the source, the key and how to fix it."""
    lines = []
    for err in exc.errors():
        where = key_path(prefix + tuple(err["loc"]))
        hint = _HINTS.get(err["type"], "correct the value")
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{source}: {where}: {msg} (fix: {hint})")
    return "\n".join(lines)


def _parse_text(path: Path, text: str) -> Any:
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise ApprovalsFileError(
            f"{path}: not valid {kind}: {exc} (fix: correct the {kind} syntax)"
        ) from exc


def _duplicate_ids(path: Path, records: list[ApprovedChange]) -> None:
    seen: dict[str, int] = {}
    for index, record in enumerate(records):
        if record.id in seen:
            raise ApprovalsFileError(
                f"{path}: approvals[{index}].id: {record.id} is already used by "
                f"approvals[{seen[record.id]}] (fix: give every approval its own id)"
            )
        seen[record.id] = index


def parse_approvals(path: Path, data: Any) -> list[ApprovedChange]:
    """Validate a parsed document; ``path`` is only used to name the file in errors."""
    if not isinstance(data, dict):
        raise ApprovalsFileError(
            f"{path}: (top level): expected a mapping with the key `approvals` "
            "(fix: start the file with `approvals:`, see config/approvals.yaml)"
        )
    try:
        records = ApprovalsDocument.model_validate(data).approvals
    except ValidationError as exc:
        raise ApprovalsFileError(describe_errors(str(path), exc)) from exc
    _duplicate_ids(path, records)
    return records


def load_approvals_file(path: Path) -> list[ApprovedChange]:
    """The approved change records in a YAML or JSON file; any problem raises ApprovalsFileError.

    >>> load_approvals_file(Path("config/approvals.yaml"))[0].id
    'CR-2026-0001'
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ApprovalsFileError(
            f"{path}: cannot read the file: {exc.strerror} (fix: check the path and permissions)"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ApprovalsFileError(f"{path}: not UTF-8 text: {exc} (fix: save it as UTF-8)") from exc
    return parse_approvals(Path(path), _parse_text(Path(path), text))
