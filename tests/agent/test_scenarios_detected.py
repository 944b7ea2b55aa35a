"""Every shipped scenario, played on the real simulated plant, against the in-process agent.

Each labelled change must be detected on the right controller and tag (a recipe tag as its
recipe group), with the labelled new value and the expected verdict; no change may be
detected that the scenario did not make; and the agent must not write to any controller.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest

from agent.config import AgentConfig
from agent.contract import ChangeKind, SuspectChange
from agent.watcher import SESSION_TAG
from simulators.runtime import SimulatedPlant
from simulators.scenario import Label, load_scenario, play
from tests.agent.test_agent_detects import CONFIG, config_for, running, spooled, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")

SPEED = 3.0
#: Changes that are not a value the scenario set: the agent's own session findings.
SESSION_KINDS = {ChangeKind.MONITORING_GAP}


def with_scenario_approvals(config: AgentConfig, approvals: Path) -> AgentConfig:
    files = [*config.approvals.files, approvals]
    return config.model_copy(
        update={"approvals": config.approvals.model_copy(update={"files": files})}
    )


def event_tag(config: AgentConfig, controller: str, tag: str) -> str:
    """The tag an event names for a label's tag: a recipe member is reported as its recipe."""
    for recipe in config.controller(controller).recipes:
        if tag in recipe.members:
            return recipe.name
    return tag


def matches(event: SuspectChange, label: Label, config: AgentConfig) -> bool:
    if (event.controller.id, event.tag.name) != (
        label.controller,
        event_tag(config, label.controller, label.tag or ""),
    ):
        return False
    value: Any = event.new_value
    if isinstance(value, dict):
        return label.new_value in (
            value.get("id"),
            value.get("version"),
            *value["parameters"].values(),
        )
    return (
        bool(value == pytest.approx(label.new_value))
        if isinstance(value, float)
        else value == label.new_value
    )


async def play_and_collect(
    plant: SimulatedPlant, tmp_path: Path, name: str
) -> tuple[list[Label], list[SuspectChange], AgentConfig]:
    scenario = load_scenario(CONFIG / "scenarios" / f"{name}.yaml")
    tmp_path.mkdir(parents=True, exist_ok=True)
    approvals = tmp_path / "scenario-approvals.yaml"
    approvals.write_text("approvals: []\n")
    config = with_scenario_approvals(config_for(plant, tmp_path / "agent"), approvals)
    async with running(config):
        labels = await play(plant, scenario, approvals_out=approvals, speed=SPEED)
        wanted = [lb for lb in labels if lb.expected_verdict is not None]

        def all_seen() -> bool:
            events = spooled(tmp_path / "agent")
            return all(any(matches(e, lb, config) for e in events) for lb in wanted)

        # Reconnects after a server restart take a few seconds; give every change its scan.
        with contextlib.suppress(AssertionError):  # the checks below say what is missing
            await wait_until(all_seen, "every labelled change", timeout=40)
        await asyncio.sleep(1.0)  # anything unexpected would show up now too
    return labels, spooled(tmp_path / "agent"), config


@pytest.mark.parametrize(
    "name", ["demo", "tamper", "maintenance", "burst", "outage", "program-download"]
)
async def test_scenario_labels_are_detected(
    plant: SimulatedPlant, tmp_path: Path, name: str
) -> None:
    labels, events, config = await play_and_collect(plant, tmp_path, name)
    changes = [
        e for e in events if e.change_kind not in SESSION_KINDS and e.tag.name != SESSION_TAG
    ]
    for label in (lb for lb in labels if lb.expected_verdict is not None):
        found = [e for e in changes if matches(e, label, config)]
        assert found, f"{name}: not detected: {label.controller}/{label.tag} -> {label.new_value}"
        # The simulator only knows approved or not; "not approved" may be any verdict but
        # authorized (the plant's standing approvals make some of them value_mismatch).
        verdict = "authorized" if found[-1].verdict.value == "authorized" else "unapproved"
        assert verdict == label.expected_verdict, (
            f"{name}: {label.controller}/{label.tag}: {found[-1].verdict.value} "
            f"({found[-1].verdict_reason}), labelled {label.expected_verdict}"
        )
    unexplained = [e for e in changes if not any(matches(e, lb, config) for lb in labels)]
    assert not unexplained, f"{name}: detected changes the scenario did not make: {unexplained}"
    verdicts = {e.verdict.value for e in changes}
    if name == "maintenance":  # every change approved: nothing for anyone to act on
        assert verdicts == {"authorized"}
    if name == "tamper":  # nothing approved: nothing authorized
        assert changes and "authorized" not in verdicts
