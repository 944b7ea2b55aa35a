"""Approval records for a scenario's approved actions, in the agent's approvals file format.

Pure: ``approval_records`` takes ``now``; ``write_approvals`` only serialises. Record ``n`` is
``CR-<scenario>-<n>`` where ``n`` is the action's 1-based position in the timeline, valid from one
hour before ``now`` to one hour after, single use. Given the plant, a record names the kind of
change it approves (``change: setpoint``, ``mode``, or ``program`` with ``{checksum: C}``), as
change control writes them; a recipe tag's record is what the action's ``approval`` says.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from agent.runtime.files import write_atomically
from simulators.plant import PlantConfig, TagKind
from simulators.scenario_model import Action, Scenario

#: The kind of change an approval names, per kind of plant tag (recipes: see the module doc).
_CHANGE_OF = {TagKind.SETPOINT: "setpoint", TagKind.MODE: "mode", TagKind.PROGRAM: "program"}


def approval_id(scenario: Scenario, position: int) -> str:
    return f"CR-{scenario.name}-{position}"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def approval_record(
    scenario: Scenario, position: int, action: Action, now: datetime,
    plant: PlantConfig | None = None,
) -> dict[str, Any]:
    """One approved change record for an approved action that sets a value."""
    change = _change_of(plant, action)
    expected: dict[str, Any] = {"exact": action.value}
    if change == "program":
        expected = {"checksum": str(action.value)}
    record: dict[str, Any] = {
        "id": approval_id(scenario, position),
        "controller": action.controller,
        "tag": action.tag,
        **({"change": change} if change else {}),
        "expected": expected,
        "valid_from": _iso(now - timedelta(hours=1)),
        "valid_until": _iso(now + timedelta(hours=1)),
        "approved_by": action.actor,
        "approved_at": _iso(now - timedelta(hours=1)),
        "reason": action.reason or f"scenario {scenario.name}: planned {action.kind_label}",
        "change_control_ref": f"CC-{position}",
        "single_use": True,
    }
    record.update(action.approval or {})
    return record


def _change_of(plant: PlantConfig | None, action: Action) -> str | None:
    if plant is None or action.tag is None or action.approval:
        return None
    return _CHANGE_OF.get(plant.controller(action.controller).tag(action.tag).kind)


def approval_records(
    scenario: Scenario, now: datetime, plant: PlantConfig | None = None
) -> list[dict[str, Any]]:
    """Records for every approved action with a value (a restore without value has none)."""
    return [
        approval_record(scenario, n, action, now, plant)
        for n, action in enumerate(scenario.timeline(), start=1)
        if action.approved and action.value is not None
    ]


def write_approvals(path: Path, records: list[dict[str, Any]]) -> None:
    """Write ``{approvals: [...]}`` atomically (temp file, rename): a reader never sees half."""
    write_atomically(path, yaml.safe_dump({"approvals": records}, sort_keys=False),
                     durable=False)
