"""What a workflow command's handler works with: the run (connection, record, actor, time,
settings), the trail entries it returns (`Change`), and the pure validation of a section
update against the model (`apply_update`). Shared by `workflow` and `steps`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import Connection

from detectors.records._exceptions import InvalidUpdate
from detectors.records.commands import EDITABLE, Actor
from detectors.records.models import MasterRecord
from detectors.records.risk import WorkflowSettings
from detectors.records.trail import canonical_json

_WHOLE_ONLY = ("description", "affected_lots", "capa_actions", "effectiveness_check")


@dataclass(frozen=True)
class Change:
    """One trail entry to append: the field, its old and new canonical JSON, and why;
    ``bind``, if given, is called with the entry's seq once it has one (a signature row
    names the entry that binds it)."""

    field: str
    old: str | None
    new: str | None
    reason: str
    bind: Callable[[int], None] | None = None


@dataclass
class Run:
    conn: Connection
    record: MasterRecord
    actor: Actor
    at: str
    now: datetime
    settings: WorkflowSettings = field(default_factory=WorkflowSettings)



# --- validating a section update against the model (pure) --------------------------------------


def apply_update(record: MasterRecord, field: str, value: Any) -> tuple[str, str, MasterRecord]:
    """Validate the change against the model; returns old and new as canonical JSON and the
    updated record (nothing is written)."""
    section, _, key = field.partition(".")
    if section not in EDITABLE or (key and section in _WHOLE_ONLY):
        raise InvalidUpdate(
            f"field {field!r} cannot be updated; use one of {', '.join(EDITABLE)} "
            "(or log.<key>, impact.<key>, containment.<key>, rca.<key>, ticket.status); "
            "state changes go through transition"
        )
    data = record.model_dump(mode="json")
    target = data[section] if key else data
    name = key or section
    if key and name not in target:
        raise InvalidUpdate(f"field {field!r}: {section} has no key {key!r}; keys: "
                            f"{', '.join(target)}")
    old = canonical_json(target[name])
    target[name] = jsonable(value)
    try:
        updated = MasterRecord.model_validate(data)
    except ValidationError as exc:
        raise InvalidUpdate(f"field {field!r}: invalid value: {exc}") from exc
    new_data = updated.model_dump(mode="json")
    new = canonical_json(new_data[section][key] if key else new_data[section])
    return old, new, updated


def jsonable(value: Any) -> Any:
    """Models and dates in, plain JSON values out, so validation sees one shape."""
    return orjson.loads(orjson.dumps(value, default=_dump_model))


def _dump_model(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot store a {type(value).__name__}")
