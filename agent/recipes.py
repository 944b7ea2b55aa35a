"""Recipes as one value: the tags of a recipe group change together, reported once. Pure.

A recipe's value is ``{"id", "version", "parameters", "hash"}``, where ``hash`` is the
SHA-256 of the canonical parameters (the same hash approvals use), so an approval can name
exactly the recipe it approves and an auditor can compare two recipes at a glance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from agent.approvals import recipe_parameters_hash
from agent.config_base import RecipeGroup, TagBase
from agent.contract import ChangeKind, TagKind
from agent.detect import Change, same_value
from agent.sources.base import Reading


class RecipeTag(TagBase):
    """The pseudo-tag that stands for a whole recipe group in events."""

    __slots__ = ("members",)
    _fields = (*TagBase._fields, "members")
    members: tuple[str, ...]

    def __init__(self, *, members: tuple[str, ...] = (), **tag: Any) -> None:
        super().__init__(**tag)
        object.__setattr__(self, "members", members)


def recipe_value(group: RecipeGroup, values: Mapping[str, Reading]) -> dict[str, Any]:
    def get(name: str | None) -> Any:
        reading = values.get(name) if name else None
        return reading.value if reading is not None else None

    parameters = {name: get(name) for name in group.parameter_tags}
    return {
        "id": get(group.id_tag),
        "version": get(group.version_tag),
        "parameters": parameters,
        "hash": recipe_parameters_hash(parameters),
    }


def settle_recipes(
    groups: Sequence[RecipeGroup],
    baseline: Mapping[str, Reading],
    latest: Mapping[str, Reading],
    pending: Mapping[str, dict[str, Any]],
    *,
    at: datetime,
    unwatched: bool = False,
) -> tuple[list[Change], dict[str, dict[str, Any]]]:
    """Recipe changes that have settled, and the recipes still being written.

    A recipe download writes many registers or nodes one after another; reporting the
    half-written recipe would be wrong. So a changed recipe is reported once two looks in a
    row (two scans, or a scan and a tick) see the same new value. What changed while the
    agent was not watching is reported at once: it has long settled.
    """
    changes: list[Change] = []
    still: dict[str, dict[str, Any]] = {}
    for group in groups:
        if not all(m in baseline for m in group.members):
            continue  # not learnt yet: the first complete scan sets the baseline
        old, new = recipe_value(group, baseline), recipe_value(group, latest)
        if same_value(old, new):
            continue
        if not unwatched and not same_value(pending.get(group.name), new):
            still[group.name] = new
            continue
        changes.append(_recipe_change(group, old, new, latest, at, unwatched))
    return changes, still


def _recipe_change(
    group: RecipeGroup,
    old: dict[str, Any],
    new: dict[str, Any],
    latest: Mapping[str, Reading],
    at: datetime,
    unwatched: bool,
) -> Change:
    if unwatched:
        kind = ChangeKind.CHANGED_WHILE_UNWATCHED
    elif old["id"] != new["id"]:
        kind = ChangeKind.RECIPE_SWITCH
    else:
        kind = ChangeKind.RECIPE_EDIT
    tag = RecipeTag(
        name=group.name,
        kind=TagKind.RECIPE,
        critical_to_quality=group.critical_to_quality,
        members=tuple(group.members),
    )
    stamps = [r.source_ts for m in group.members if (r := latest.get(m)) and r.source_ts]
    return Change(tag, old, new, max(stamps) if stamps else at, kind)
