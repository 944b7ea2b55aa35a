"""Scenario files: a timeline of actions on the plant, each with its ground truth.

A scenario is pure data; ``check_against`` proves it only names controllers and tags the plant
has, before anything is played. The player is in ``simulators.player``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulators.configfile import load_model
from simulators.errors import ScenarioError, UnknownTagError
from simulators.plant import ModbusController, OpcUaController, PlantConfig, Scalar, TagKind


class ActionKind(StrEnum):
    """What the scenario does at one point of its timeline."""

    CHANGE = "change"  # write a tag (setpoint, recipe, mode), as an engineer would
    RESTORE = "restore"  # put back the value the tag had before the scenario's last change
    OFFLINE_CHANGE = "offline_change"  # stop the server, change the tag while down, start again
    PROGRAM_DOWNLOAD = "program_download"  # checksum change plus an OPC UA server restart
    DROP_CONNECTIONS = "drop_connections"  # close every client connection
    RESTART = "restart"  # restart the server (OPC UA: namespaces renumbered)
    MODBUS_EXCEPTION = "modbus_exception"  # answer client requests with an exception code
    SLOW_RESPONSES = "slow_responses"  # delay every client request
    CLEAR_FAULTS = "clear_faults"  # back to normal service


WRITING = {
    ActionKind.CHANGE,
    ActionKind.RESTORE,
    ActionKind.OFFLINE_CHANGE,
    ActionKind.PROGRAM_DOWNLOAD,
}
DEFAULT_CHANGE_KIND = {
    ActionKind.CHANGE: "setpoint_change",
    ActionKind.RESTORE: "setpoint_change",
    ActionKind.OFFLINE_CHANGE: "changed_while_unwatched",
    ActionKind.PROGRAM_DOWNLOAD: "program_change",
}


class Action(BaseModel):
    """One timeline entry; ``at`` is seconds from the start of the scenario (before speed-up)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: float = Field(ge=0)
    action: ActionKind = ActionKind.CHANGE
    controller: str
    tag: str | None = None
    value: Scalar | None = None
    actor: str = "unknown"
    approved: bool = False
    change_kind: str | None = None
    reason: str | None = None
    downtime_s: float = Field(default=0.0, ge=0)
    renumber: bool = True
    exception: Literal["device_busy", "illegal_address", "device_failure"] | None = None
    delay_s: float = Field(default=0.0, ge=0)
    duration_s: float | None = Field(default=None, gt=0)
    #: Fields of the emitted approval record that differ from the default one, e.g. the
    #: agent's recipe group and the whole recipe it approves:
    #: ``{tag: active_recipe, expected: {recipe_id: R-200, recipe_version: 3}}``.
    approval: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _fields_fit_action(self) -> Action:
        needs_value = {ActionKind.CHANGE, ActionKind.OFFLINE_CHANGE, ActionKind.PROGRAM_DOWNLOAD}
        if self.action in WRITING and self.tag is None:
            raise ValueError(f"action {self.action.value} needs tag")
        if self.action in needs_value and self.value is None:
            raise ValueError(f"action {self.action.value} needs value")
        if self.action is ActionKind.MODBUS_EXCEPTION and self.exception is None:
            raise ValueError("action modbus_exception needs exception: device_busy|illegal_address")
        if self.action is ActionKind.SLOW_RESPONSES and self.delay_s <= 0:
            raise ValueError("action slow_responses needs delay_s > 0")
        if self.approved and self.action not in WRITING:
            raise ValueError(f"action {self.action.value} changes no value; it cannot be approved")
        return self

    @property
    def kind_label(self) -> str | None:
        """The change kind written to the labels (explicit, or the action's default)."""
        return self.change_kind or DEFAULT_CHANGE_KIND.get(self.action)


class Scenario(BaseModel):
    """A named timeline; actions are played in ``at`` order (file order breaks ties)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    actions: list[Action]

    def timeline(self) -> list[Action]:
        return sorted(self.actions, key=lambda a: a.at)

    @property
    def length_s(self) -> float:
        """Seconds until the last action and the last fault it starts are over."""
        ends = [a.at + (a.duration_s or 0) + a.downtime_s for a in self.actions]
        return max(ends, default=0.0)


class Label(BaseModel):
    """Ground truth for one played action: what changed and the verdict the pipeline owes it.

    ``expected_verdict`` is ``authorized`` or ``unapproved`` for actions that change a value and
    ``None`` for pure faults (drop, restart, exception responses). ``started`` is when the
    action began and ``time`` when it was done: a restart's controller was down in between.
    """

    model_config = ConfigDict(extra="forbid")

    time: datetime
    started: datetime | None = None
    scenario: str
    seq: int
    action: ActionKind
    controller: str
    tag: str | None
    old_value: Scalar | None
    new_value: Scalar | None
    change_kind: str | None
    expected_verdict: Literal["authorized", "unapproved"] | None
    actor: str
    approval_id: str | None = None


def _check_action(plant: PlantConfig, action: Action) -> None:
    ctrl = plant.controller(action.controller)
    if action.tag is not None:
        tag = ctrl.tag(action.tag)
        if action.action in WRITING and tag.kind is TagKind.MEASUREMENT:
            raise ScenarioError(
                f"{action.action.value} of {action.tag!r}: a measurement is moved by the process, "
                "never changed by a person (no change to label)"
            )
    modbus_only = {ActionKind.MODBUS_EXCEPTION, ActionKind.SLOW_RESPONSES}
    if action.action in modbus_only and not isinstance(ctrl, ModbusController):
        raise ScenarioError(f"{action.action.value} applies to Modbus controllers only")
    if action.action is ActionKind.PROGRAM_DOWNLOAD and not isinstance(ctrl, OpcUaController):
        raise ScenarioError("program_download applies to OPC UA controllers only")


def check_against(plant: PlantConfig, scenario: Scenario, source: str = "") -> None:
    """Raise ``ScenarioError`` naming the action if it does not fit the plant."""
    where = source or f"scenario {scenario.name!r}"
    for n, action in enumerate(scenario.actions):
        try:
            _check_action(plant, action)
        except (UnknownTagError, ScenarioError) as exc:
            raise ScenarioError(
                f"{where}: actions[{n}]: {exc} (fix: use a controller and tag from the plant file)"
            ) from None


def load_scenario(path: Path | str) -> Scenario:
    """Load and validate a scenario file; raises ``ScenarioError`` naming file, key and fix."""
    return load_model(path, Scenario, ScenarioError)


def resolve_restores(scenario: Scenario, current: dict[tuple[str, str], Scalar]) -> Scenario:
    """Fill in the value of every ``restore`` without one: the tag's value before its last change.

    ``current`` holds the plant's values before the scenario starts, so the result is known before
    playing, and approvals for restores can be written up front.
    """
    values = dict(current)
    before: dict[tuple[str, str], Scalar] = {}
    resolved: list[Action] = []
    for action in scenario.timeline():
        key = (action.controller, action.tag or "")
        if action.action is ActionKind.RESTORE and action.value is None:
            fallback = values.get(key)
            action = action.model_copy(update={"value": before.get(key, fallback)})
        if action.action in WRITING and action.value is not None:
            if action.action is not ActionKind.RESTORE and key in values:
                before[key] = values[key]
            values[key] = action.value
        resolved.append(action)
    return scenario.model_copy(update={"actions": resolved})
