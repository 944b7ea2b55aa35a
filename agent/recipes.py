"""Recipes as one value: the tags of a recipe group change together, reported once. Pure.

A recipe's value is ``{"id", "version", "parameters", "hash"}``, where ``hash`` is the
SHA-256 of the canonical parameters (the same hash approvals use), so an approval can name
exactly the recipe it approves and an auditor can compare two recipes at a glance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agent.approvals import recipe_parameters_hash
from agent.config_base import RecipeGroup, TagBase
from agent.detect import Change
from agent.events import ChangeKind, TagKind
from agent.sources.base import Reading


class RecipeTag(TagBase):
    """The pseudo-tag that stands for a whole recipe group in events."""

    members: tuple[str, ...] = ()


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


def group_recipe_changes(
    changes: Sequence[Change],
    groups: Sequence[RecipeGroup],
    baseline: Mapping[str, Reading],
    readings: Mapping[str, Reading],
) -> list[Change]:
    """Replace the tag-level changes of each recipe group by one change of the whole recipe."""
    if not groups:
        return list(changes)
    member_of = {m: g for g in groups for m in g.members}
    out = [c for c in changes if c.tag.name not in member_of]
    after = {**baseline, **readings}
    for group in groups:
        mine = [c for c in changes if member_of.get(c.tag.name) is group]
        if not mine:
            continue
        old, new = recipe_value(group, baseline), recipe_value(group, after)
        if mine[0].change_kind is ChangeKind.CHANGED_WHILE_UNWATCHED:
            kind = ChangeKind.CHANGED_WHILE_UNWATCHED
        elif old["id"] != new["id"]:
            kind = ChangeKind.RECIPE_SWITCH
        else:
            kind = ChangeKind.RECIPE_EDIT
        tag = RecipeTag(
            name=group.name, kind=TagKind.RECIPE,
            critical_to_quality=group.critical_to_quality, members=tuple(group.members),
        )
        occurred = min(c.occurred_at for c in mine)
        out.append(Change(tag, old, new, occurred, kind))
    return out
