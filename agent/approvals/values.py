"""What kind of change a detected change is, and whether its new value is the approved one. Pure.

`kind_of_change` names a detected change in the words approvals use (setpoint, mode, program,
recipe_switch, recipe_edit): a change made while the agent was not watching is the kind of
change its tag makes, and a recipe that changed while unwatched is a switch when its id moved,
an edit otherwise. `value_mismatch` says, in plain words, how a new value differs from what a
record approved, or None when it is what was approved.

Recipe ids and versions compare as the controller reports them, numbers and text alike: an
approval's ``recipe_id: 12`` matches a recipe-select register reading 12, and ``"12"`` too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from agent.approvals.hashing import recipe_parameters_hash
from agent.approvals.model import (
    ApprovalKind,
    ApprovedChange,
    ExactValue,
    ParameterValue,
    ProgramChecksum,
    RecipeEdit,
    RecipeRef,
    ValueRange,
    describe_parameter,
    format_number,
)
from agent.contract import ChangeKind, TagKind, TagValue

#: Relative tolerance for numbers: float32 registers carry ~7 significant digits.
REL_TOL = 1e-6

_KIND_OF: dict[ChangeKind, ApprovalKind] = {
    ChangeKind.SETPOINT_CHANGE: "setpoint",
    ChangeKind.MODE_CHANGE: "mode",
    ChangeKind.PROGRAM_CHANGE: "program",
    ChangeKind.RECIPE_SWITCH: "recipe_switch",
    ChangeKind.RECIPE_EDIT: "recipe_edit",
}
_KIND_OF_TAG: dict[TagKind, ApprovalKind] = {
    TagKind.SETPOINT: "setpoint", TagKind.MODE: "mode", TagKind.PROGRAM: "program",
}
KIND_WORDS: dict[ApprovalKind, str] = {
    "setpoint": "a setpoint change", "mode": "a mode change", "program": "a program change",
    "recipe_switch": "a recipe switch", "recipe_edit": "a recipe edit",
}


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def numbers_equal(a: float, b: float) -> bool:
    """Equal within float32 precision: 185.00000762939453 equals 185.0."""
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-9)


def recipe_key(value: object) -> str | None:
    """A recipe id or version for comparing: 12, 12.0 and "12" are one key; text as it is."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def kind_of_change(
    change_kind: ChangeKind, tag_kind: TagKind | None, old: TagValue, new: TagValue
) -> ApprovalKind | None:
    """The kind of change in the approvals' words; None when it cannot be told (an unwatched
    change reported without its tag's kind, or a monitoring gap)."""
    kind = _KIND_OF.get(change_kind)
    if kind is not None or change_kind is not ChangeKind.CHANGED_WHILE_UNWATCHED:
        return kind
    if isinstance(new, Mapping):  # a recipe group: its id tells a switch from an edit
        same_id = isinstance(old, Mapping) and recipe_key(old.get("id")) == recipe_key(
            new.get("id"))
        return "recipe_edit" if same_id else "recipe_switch"
    if tag_kind is TagKind.RECIPE:
        return "recipe_switch"  # a recipe-select register
    return _KIND_OF_TAG.get(tag_kind) if tag_kind is not None else None


def covers(record: ApprovedChange, kind: ApprovalKind | None, new: TagValue) -> bool:
    """Whether the record approves this kind of change at all (its value aside)."""
    approves = record.approves
    if approves is None:  # an exact value: the tag's own kind, never a whole recipe
        return kind in ("setpoint", "mode", "program") or (
            kind == "recipe_switch" and not isinstance(new, Mapping))
    return approves == kind


def show_value(value: TagValue) -> str:
    """A tag value in the words of an event reason."""
    if is_number(value):
        return format_number(value)  # type: ignore[arg-type]
    if isinstance(value, Mapping):
        return f"recipe {value.get('id')} version {value.get('version')}"
    return repr(value)


def _exact_mismatch(expected: ExactValue, value: Any) -> str | None:
    if is_number(expected.exact) and is_number(value):
        if numbers_equal(float(expected.exact), float(value)):
            return None
    elif type(expected.exact) is type(value) and expected.exact == value:
        return None
    unit = f" {expected.unit}" if expected.unit and is_number(value) else ""
    return f"approved {expected.describe()}, got {show_value(value)}{unit}"


def _in_range(expected: ValueRange, value: float) -> bool:
    low_ok = expected.min is None or value >= expected.min or numbers_equal(value, expected.min)
    high_ok = expected.max is None or value <= expected.max or numbers_equal(value, expected.max)
    return low_ok and high_ok


def _range_mismatch(expected: ValueRange, value: Any) -> str | None:
    if is_number(value) and _in_range(expected, float(value)):
        return None
    unit = f" {expected.unit}" if expected.unit and is_number(value) else ""
    return f"approved {expected.describe()}, got {show_value(value)}{unit}"


def _checksum_mismatch(expected: ProgramChecksum, value: TagValue) -> str | None:
    if isinstance(value, str) and value.strip().lower() == expected.checksum.strip().lower():
        return None
    return f"approved {expected.describe()}, got {show_value(value)}"


def _switch_mismatch(expected: RecipeRef, value: TagValue) -> str | None:
    if not isinstance(value, Mapping):  # a recipe-select register: its value is the id
        if recipe_key(value) == recipe_key(expected.recipe_id) and (
                expected.recipe_version is None and not expected.parameters_hash):
            return None
        return f"approved {expected.describe()}, got recipe {show_value(value)}"
    got_id, got_version = value.get("id"), value.get("version")
    wrong_version = expected.recipe_version is not None and recipe_key(got_version) != recipe_key(
        expected.recipe_version)
    if recipe_key(got_id) != recipe_key(expected.recipe_id) or wrong_version:
        return f"approved {expected.describe()}, got recipe {got_id} version {got_version}"
    if expected.parameters_hash:
        got_hash = recipe_parameters_hash(value.get("parameters") or {})
        if got_hash != expected.parameters_hash.lower():
            return (
                f"approved {expected.describe()}, got recipe {got_id} version {got_version} "
                f"with parameters hash {got_hash[:12]}"
            )
    return None


def parameter_mismatch(approved: ParameterValue, value: Any) -> bool:
    if isinstance(approved, ValueRange):
        return _range_mismatch(approved, value) is not None
    exact = approved if isinstance(approved, ExactValue) else ExactValue(exact=approved)
    return _exact_mismatch(exact, value) is not None


def _differs(old: Any, new: Any) -> bool:
    if is_number(old) and is_number(new):
        return not numbers_equal(float(old), float(new))
    return bool(old != new)


def _edit_mismatch(expected: RecipeEdit, old: TagValue, value: TagValue) -> str | None:
    if not isinstance(value, Mapping):
        return f"approved {expected.describe()}, got a single value {show_value(value)}"
    if expected.recipe_id is not None and recipe_key(value.get("id")) != recipe_key(
            expected.recipe_id):
        return f"approved an edit of recipe {expected.recipe_id}, got recipe {value.get('id')}"
    if expected.recipe_version is not None and recipe_key(value.get("version")) != recipe_key(
            expected.recipe_version):
        return (f"approved an edit to version {expected.recipe_version}, got version "
                f"{value.get('version')}")
    new_params: Mapping[str, Any] = value.get("parameters") or {}
    old_params: Mapping[str, Any] = {}
    if isinstance(old, Mapping):
        old_params = old.get("parameters") or {}
    return _parameters_mismatch(expected, old_params, new_params,
                                known_old=isinstance(old, Mapping))


def _parameters_mismatch(expected: RecipeEdit, old: Mapping[str, Any], new: Mapping[str, Any],
                         *, known_old: bool) -> str | None:
    missing = [name for name in expected.parameters if name not in new]
    if missing:
        return f"approved an edit of {', '.join(missing)}, which the recipe does not have"
    changed = [n for n in new if known_old and _differs(old.get(n), new[n])]
    unnamed = [n for n in changed if n not in expected.parameters]
    if unnamed:
        shown = ", ".join(f"{n} {show_value(old.get(n))} -> {show_value(new[n])}" for n in unnamed)
        return f"approved an edit of {', '.join(expected.parameters)} only, but {shown}"
    for name, approved in expected.parameters.items():
        if (not known_old or name in changed) and parameter_mismatch(approved, new[name]):
            return (f"approved {name} {describe_parameter(approved)}, got "
                    f"{show_value(new[name])}")
    return None


def value_mismatch(record: ApprovedChange, old: TagValue, value: TagValue) -> str | None:
    """None when the new value is what the record approved, else why not, in plain words.

    The record covers the kind of change already (`covers`).
    """
    expected = record.expected
    if isinstance(expected, RecipeRef):
        return _switch_mismatch(expected, value)
    if isinstance(expected, RecipeEdit):
        return _edit_mismatch(expected, old, value)
    if isinstance(expected, ProgramChecksum):
        return _checksum_mismatch(expected, value)
    if isinstance(value, Mapping):
        return f"approved {expected.describe()}, got {show_value(value)}"
    if isinstance(expected, ExactValue):
        return _exact_mismatch(expected, value)
    return _range_mismatch(expected, value)
