"""What every tag and every controller has, whatever its protocol (see `agent.config`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.contract import TagKind

ContextRole = Literal["lot", "batch", "recipe", "operator"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TagBase(_Strict):
    """A watched tag (``kind``) or a context tag (``context``) that travels with every event."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    kind: TagKind | None = None
    context: ContextRole | None = None
    critical_to_quality: bool = False
    unit: str | None = None
    #: Analogue noise below this absolute difference is not a change.
    deadband: float = Field(default=0.0, ge=0.0)

    @property
    def event_address(self) -> str:
        """Where the tag lives, as ``SuspectChange.tag.address`` names it (each protocol's tag
        says it in its own words; a tag of no protocol has only its name)."""
        return self.name

    @model_validator(mode="after")
    def _has_role(self) -> TagBase:
        if self.kind is None and self.context is None:
            raise ValueError(
                "a tag needs `kind` (setpoint, recipe, program, mode) to be watched, "
                "or `context` (lot, batch, recipe, operator) to travel with events"
            )
        return self


class RecipeGroup(_Strict):
    """Tags that together are one recipe: reported as one value, hashed, never tag by tag.

    A different id is a ``recipe_switch``; the same id with another version or other
    parameter values is a ``recipe_edit``.
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    id_tag: str
    version_tag: str | None = None
    parameter_tags: list[str] = Field(default_factory=list)
    critical_to_quality: bool = True

    @property
    def members(self) -> list[str]:
        return [
            self.id_tag,
            *([self.version_tag] if self.version_tag else []),
            *self.parameter_tags,
        ]


class ControllerBase(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    line: str = "line-1"
    validated: bool = False
    poll_interval_s: float = Field(default=1.0, gt=0.0, le=3600.0)
    timeout_s: float = Field(default=2.0, gt=0.0, le=60.0)
    #: Reconnect backoff: first delay doubles up to this cap.
    reconnect_max_s: float = Field(default=30.0, gt=0.0)
    #: Shorter spells without a complete scan are not reported as a monitoring gap.
    monitoring_gap_min_s: float = Field(default=5.0, ge=0.0)
    recipes: list[RecipeGroup] = Field(default_factory=list)

    @property
    def look_interval_s(self) -> float:
        """Longest time a value written now can take to reach the agent (one poll here)."""
        return self.poll_interval_s
