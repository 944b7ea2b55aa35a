"""Approvals against an agent config: can each record ever match a change the agent reports? Pure.

An approval names a controller and a tag. It can only ever match if the agent watches that tag
and reports it on its own: a member of a recipe group (its id, version or a parameter tag) is
reported as the group, so an approval for the member never matches; a context tag and a
measurement are never a change at all. The kind of change must also be one the tag makes, and
an edit may only name the recipe's parameter tags.

``otwatch-agent approvals validate --config`` lists the problems of files (`target_problems`);
the agent refuses such approvals when it loads them (`target_checker`, used by its
`agent.approvals.ApprovalBook`), logging each once with its fix.

Example::

    >>> problems = target_problems(Path("approvals.yaml"), records, load_agent_config(path),
    ...                            Path("agent.yaml"))
    ['approvals.yaml: approval CR-9: tag: recipe_version is only ever reported as part of ...']
    >>> check = target_checker(config, Path("agent.yaml"))
    >>> check(record)                       # None: it can match; else the problem and its fix
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agent.approvals.model import ApprovalKind, ApprovedChange, RecipeEdit, RecipeRef
from agent.contract import TagKind

if TYPE_CHECKING:
    from agent.config import AgentConfig, RecipeGroup

#: The kinds of change each kind of single tag makes.
_KINDS_OF_TAG: dict[TagKind, tuple[ApprovalKind, ...]] = {
    TagKind.SETPOINT: ("setpoint",),
    TagKind.MODE: ("mode",),
    TagKind.PROGRAM: ("program",),
    TagKind.RECIPE: ("recipe_switch",),  # a recipe-select register on its own
}
_GROUP_KINDS: tuple[ApprovalKind, ...] = ("recipe_switch", "recipe_edit")


@dataclass
class _Controller:
    """What one controller of the config reports: tags on their own, recipe groups."""

    single: dict[str, TagKind] = field(default_factory=dict)
    context: set[str] = field(default_factory=set)
    measurements: set[str] = field(default_factory=set)
    groups: dict[str, RecipeGroup] = field(default_factory=dict)
    member_of: dict[str, str] = field(default_factory=dict)

    def reported(self) -> list[str]:
        return sorted([*self.single, *self.groups])


def _controllers(config: AgentConfig) -> dict[str, _Controller]:
    out: dict[str, _Controller] = {}
    for ctl in config.controllers:
        seen = out[ctl.id] = _Controller()
        for group in ctl.recipes:
            seen.groups[group.name] = group
            seen.member_of.update({m: group.name for m in group.members})
        for tag in ctl.tags:
            if tag.name in seen.member_of:
                continue
            if tag.is_measurement:
                seen.measurements.add(tag.name)
            elif tag.kind is not None:
                seen.single[tag.name] = tag.kind
            else:
                seen.context.add(tag.name)
    return out


def target_problems(
    path: Path, records: Sequence[ApprovedChange], config: AgentConfig, config_path: Path
) -> list[str]:
    """One line per approval that can never match, naming the file, the id, the key, the fix."""
    check = target_checker(config, config_path)
    problems = []
    for rec in records:
        problem = check(rec)
        if problem is not None:
            problems.append(f"{path}: approval {rec.id}: {problem}")
    return problems


def target_checker(
    config: AgentConfig, config_path: Path | str
) -> Callable[[ApprovedChange], str | None]:
    """A check of one approval against ``config`` (what `target_problems` does per record):
    None when it can match a change the agent reports, else the problem and its fix."""
    controllers = _controllers(config)
    return lambda rec: _problem(rec, controllers, config_path)


def _problem(rec: ApprovedChange, controllers: dict[str, _Controller],
             config_path: Path | str) -> str | None:
    ctl = controllers.get(rec.controller)
    if ctl is None:
        return (f"controller: {rec.controller!r} is not a controller of {config_path} (it has "
                f"{', '.join(controllers)}); fix: use one of those ids")
    where = f"{rec.controller}/{rec.tag}"
    if rec.tag in ctl.member_of:
        group = ctl.member_of[rec.tag]
        return (f"tag: {rec.tag} is only ever reported as part of recipe {group!r} on "
                f"{rec.controller}, so this approval can never match; fix: set tag: {group}, "
                "with change: recipe_switch (expected {recipe_id, recipe_version}) or change: "
                "recipe_edit (expected {parameters: {" + rec.tag + ": ...}})")
    if rec.tag in ctl.context:
        return (f"tag: {where} is a context tag (it travels with events, it is never a change "
                "itself); fix: approve the watched tag instead")
    if rec.tag in ctl.measurements:
        return (f"tag: {where} is a measurement (read as context, never a change itself); fix: "
                "approve the setpoint that drives it instead")
    if rec.tag in ctl.groups:
        return _group_problem(rec, ctl.groups[rec.tag])
    kind = ctl.single.get(rec.tag)
    if kind is None:
        return (f"tag: {rec.tag!r} is not a tag or recipe that {rec.controller} reports (it "
                f"reports {', '.join(ctl.reported())}); fix: use one of those names")
    allowed = _KINDS_OF_TAG.get(kind, ())
    if rec.approves is not None and rec.approves not in allowed:
        return (f"change: {rec.approves} can never happen on {where}, a {kind.value} tag "
                f"(it makes {', '.join(allowed)}); fix: set change: {allowed[0]} and its expected "
                "value")
    return None


def _group_problem(rec: ApprovedChange, group: RecipeGroup) -> str | None:
    where = f"recipe {group.name!r}"
    if rec.approves not in _GROUP_KINDS:
        return (f"change: {rec.approves or 'a single value'} can never happen to {where}, "
                "which is reported as a whole; fix: change: recipe_switch with expected "
                "{recipe_id, recipe_version}, or change: recipe_edit with expected "
                "{parameters: {...}}")
    expected = rec.expected
    no_version = group.version_tag is None
    if isinstance(expected, RecipeRef | RecipeEdit) and no_version and (
            expected.recipe_version is not None):
        return (f"expected.recipe_version: {where} has no version tag, so no recipe it reports "
                "has a version; fix: remove recipe_version")
    if isinstance(expected, RecipeEdit):
        unknown = [n for n in expected.parameters if n not in group.parameter_tags]
        if unknown:
            return (f"expected.parameters: {', '.join(unknown)} is not a parameter of {where} "
                    f"(its parameters: {', '.join(group.parameter_tags) or 'none'}); fix: name "
                    "the recipe's parameter tags")
    return None
