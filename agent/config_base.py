"""What every tag and every controller has, whatever its protocol (see `agent.config`).

A tag is validated by its settings model (`TagSettings` and each protocol's subclass: the
checks, the messages naming key and fix, the reference page) and then kept as a `TagBase`
row (`agent.config_rows`): slots, no pydantic instance. An agent watches up to 100,000 tags;
as pydantic models they held ~820 bytes each, as rows ~200.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.config_rows import SettingsRow
from agent.contract import TagKind

ContextRole = Literal["lot", "batch", "recipe", "operator"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: The context keys of the roles: a measurement tag may not take one of these names.
CONTEXT_ROLES: tuple[str, ...] = ("lot", "batch", "recipe", "operator")


class TagSettings(_Strict):
    """A watched tag (``kind``) or a context tag (``context``) that travels with every event.

    A tag of ``kind: measurement`` (a process value, e.g. an actual temperature) is read with
    the rest but never compared for changes: its current value travels in the ``context`` of
    every event of its controller, under the tag's name, and in the evidence snapshot.
    """

    #: The tag's name in events and approvals (letters, digits, ``_ . -``).
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    #: What a change of it is: setpoint, recipe, program, mode; ``measurement`` is read as context
    #: only.
    kind: TagKind | None = None
    #: Or the context role it gives every event of its controller: lot, batch, recipe, operator.
    context: ContextRole | None = None
    #: A change of it can affect product quality (drives the quality side of the criteria).
    critical_to_quality: bool = False
    #: Engineering unit shown with its values (e.g. degC, bar).
    unit: str | None = None
    #: Analogue noise below this absolute difference is not a change.
    deadband: float = Field(default=0.0, ge=0.0)

    @model_validator(mode="after")
    def _has_role(self) -> TagSettings:
        if self.kind is None and self.context is None:
            raise ValueError(
                "a tag needs `kind` (setpoint, recipe, program, mode) to be watched, "
                "`kind: measurement` to be read as context, or `context` (lot, batch, recipe, "
                "operator) to travel with events"
            )
        if self.kind is TagKind.MEASUREMENT and self.name in CONTEXT_ROLES:
            raise ValueError(
                f"a measurement travels in the events' context under its name, and {self.name!r} "
                "is the key of a context role; fix: rename the tag (e.g. "
                f"{self.name}_actual)"
            )
        return self


class TagBase(SettingsRow):
    """A validated tag (`TagSettings`): what the sources, the watcher and the events read."""

    __settings__: ClassVar[type[BaseModel]] = TagSettings
    __slots__ = ("context", "critical_to_quality", "deadband", "kind", "name", "unit")
    name: str
    kind: TagKind | None
    context: ContextRole | None
    critical_to_quality: bool
    unit: str | None
    deadband: float

    @property
    def event_address(self) -> str:
        """Where the tag lives, as ``SuspectChange.tag.address`` names it (each protocol's tag
        says it in its own words; a tag of no protocol has only its name)."""
        return self.name

    @property
    def is_measurement(self) -> bool:
        return self.kind is TagKind.MEASUREMENT

    @property
    def is_watched(self) -> bool:
        """Compared with the baseline for changes (every kind but a measurement)."""
        return self.kind is not None and self.kind is not TagKind.MEASUREMENT


class RecipeGroup(_Strict):
    """Tags that together are one recipe: reported as one value, hashed, never tag by tag.

    A different id is a ``recipe_switch``; the same id with another version or other
    parameter values is a ``recipe_edit``.
    """

    #: The recipe's name in events and approvals.
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    #: The tag holding the active recipe's id.
    id_tag: str
    #: The tag holding the recipe's version, if the controller has one.
    version_tag: str | None = None
    #: The recipe's parameter tags.
    parameter_tags: list[str] = Field(default_factory=list)
    #: A change of the recipe can affect product quality.
    critical_to_quality: bool = True

    @property
    def members(self) -> list[str]:
        return [
            self.id_tag,
            *([self.version_tag] if self.version_tag else []),
            *self.parameter_tags,
        ]


class ControllerBase(_Strict):
    #: The controller's name in events, approvals and records.
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    #: The production line it belongs to.
    line: str = "line-1"
    #: The controller is in a validated (GMP) state: changes to it weigh more.
    validated: bool = False
    #: Seconds between two reads of every tag (polling sources).
    poll_interval_s: float = Field(default=1.0, gt=0.0, le=3600.0)
    #: How long one request may take before the controller counts as unreachable. OPC UA also
    #: checks this often that the server is alive, with this timeout: a server gone silent is
    #: noticed within about twice this.
    timeout_s: float = Field(default=2.0, gt=0.0, le=60.0)
    #: Reconnect backoff: first delay doubles up to this cap.
    reconnect_max_s: float = Field(default=30.0, gt=0.0)
    #: Shorter spells without a complete scan are not reported as a monitoring gap.
    monitoring_gap_min_s: float = Field(default=5.0, ge=0.0)
    #: A session lost (or a server restart) at most this long after a program change was
    #: seen is taken to be that download's: an approved download covers it.
    download_restart_s: float = Field(default=300.0, ge=0.0)
    recipes: list[RecipeGroup] = Field(default_factory=list)

    @property
    def look_interval_s(self) -> float:
        """Longest time a value written now can take to reach the agent (one poll here)."""
        return self.poll_interval_s
