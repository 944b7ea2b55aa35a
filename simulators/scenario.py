"""Scenarios: load a timeline of actions and play it on a running plant with ground truth.

Example::

    scenario = load_scenario("config/scenarios/demo.yaml")
    async with SimulatedPlant(load_plant("config/plant.yaml")) as plant:
        labels = await play(plant, scenario, labels_out=Path("labels.jsonl"), speed=10)
"""

from __future__ import annotations

from simulators.approvals import approval_records, write_approvals
from simulators.player import play
from simulators.scenario_model import (
    Action,
    ActionKind,
    Label,
    Scenario,
    check_against,
    load_scenario,
    resolve_restores,
)

__all__ = [
    "Action",
    "ActionKind",
    "Label",
    "Scenario",
    "approval_records",
    "check_against",
    "load_scenario",
    "play",
    "resolve_restores",
    "write_approvals",
]
