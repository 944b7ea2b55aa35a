"""Change detection: compare what a controller reports with the baseline. Pure functions.

A change is a watched tag whose value differs from its baseline value by more than the
tag's deadband. The first scan after a (re)connect compares against the persisted
baseline, so what changed while nobody was looking is reported as
``changed_while_unwatched``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import NamedTuple

from agent.config import TagBase
from agent.contract import ChangeKind, TagKind, TagValue
from agent.sources.base import Reading

_KIND_OF_CHANGE = {
    TagKind.SETPOINT: ChangeKind.SETPOINT_CHANGE,
    TagKind.RECIPE: ChangeKind.RECIPE_SWITCH,
    TagKind.PROGRAM: ChangeKind.PROGRAM_CHANGE,
    TagKind.MODE: ChangeKind.MODE_CHANGE,
}


class Change(NamedTuple):
    """A watched tag that changed: the raw material of one `SuspectChange` event.

    A named tuple, immutable as a frozen dataclass would be, made at a third of the cost (a
    frozen dataclass sets each field through ``object.__setattr__``): one per change."""

    tag: TagBase
    old_value: TagValue
    new_value: TagValue
    occurred_at: datetime
    change_kind: ChangeKind


def differs(old: TagValue, new: TagValue, deadband: float) -> bool:
    """True when `new` is a real change from `old` (numbers within the deadband are not).

    NaN is a value of its own: a number that becomes NaN, or NaN that becomes a number, is a
    change (a sensor or a write that broke a setpoint must not pass unseen); NaN staying NaN is
    not. An infinity changes only into something else (+inf to -inf is a change). Recipes and
    other mappings compare member by member the same way (`same_value`).
    """
    if type(old) is float and type(new) is float:
        # The common case (an OPC UA double), without the general path's checks: a finite
        # difference means both are finite (inf - inf and anything with NaN are NaN, x - inf
        # is inf, and d - d is 0.0 only for a finite d).
        d = new - old
        if d - d == 0.0:
            return abs(d) > deadband
    if _is_number(old) and _is_number(new):
        return _numbers_differ(old, new, deadband)  # type: ignore[arg-type]
    return not same_value(old, new)


def _numbers_differ(old: float, new: float, deadband: float) -> bool:
    if isinstance(old, int) and isinstance(new, int):
        return abs(new - old) > deadband  # exact, however large the integers
    try:
        a, b = float(old), float(new)
    except OverflowError:  # an integer beyond any float: compare exactly
        return old != new
    if math.isnan(a) or math.isnan(b):
        return not (math.isnan(a) and math.isnan(b))
    if math.isinf(a) or math.isinf(b):
        return a != b
    return abs(b - a) > deadband


def same_value(a: object, b: object) -> bool:
    """Equal, where NaN equals NaN at any depth (``==`` says a NaN differs from itself, so a
    recipe holding one would never settle)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _is_number(value: TagValue) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def detect_changes(
    tags: Iterable[TagBase],
    baseline: Mapping[str, Reading],
    readings: Mapping[str, Reading],
    *,
    at: datetime,
    unwatched: bool = False,
) -> list[Change]:
    """The changes in `readings` against `baseline`; tags absent from either are skipped.

    A tag with no baseline yet (first time ever seen) is learnt, not reported.
    """
    changes = []
    for tag in tags:
        if tag.kind is None or tag.kind is TagKind.MEASUREMENT:  # context, never a change
            continue
        new, old = readings.get(tag.name), baseline.get(tag.name)
        # Sources hand back the very same Reading while a value stands still, so identity
        # settles most tags without a comparison (the same object never differs from itself).
        if new is None or old is None or new is old:
            continue
        if not differs(old.value, new.value, tag.deadband):
            continue
        kind = ChangeKind.CHANGED_WHILE_UNWATCHED if unwatched else _KIND_OF_CHANGE[tag.kind]
        occurred = new.source_ts or at
        changes.append(Change(tag, old.value, new.value, occurred, kind))
    return changes


def next_baseline(
    baseline: Mapping[str, Reading], readings: Mapping[str, Reading], changes: Iterable[Change]
) -> dict[str, Reading]:
    """The baseline after a scan: changed and new tags take their new reading.

    Values within the deadband keep the old baseline value, so slow drift is still
    reported once it adds up to more than the deadband.
    """
    updated = dict(baseline)
    advance_baseline(updated, readings, changes)
    return updated


def advance_baseline(
    baseline: dict[str, Reading], readings: Mapping[str, Reading], changes: Iterable[Change]
) -> None:
    """`next_baseline` in place: a notification batch moves a few of 10,000 tags, and a copy
    of the whole baseline per batch cost more than the batch's own tags."""
    changed = {c.tag.name for c in changes}
    for name, reading in readings.items():
        kept = baseline.get(name)
        if kept is None or name in changed:
            baseline[name] = reading
        elif kept is not reading and _same_reading(kept, reading):
            baseline[name] = reading  # the same content: share the object (see detect_changes)


def _same_reading(old: Reading, new: Reading) -> bool:
    """True when `new` cannot be told apart from `old` (0.0 is not -0.0, 1 is not True)."""
    a, b = old.value, new.value
    if type(a) is not type(b) or a != b or old.source_ts != new.source_ts:
        return False
    return not isinstance(a, float) or a != 0.0 or math.copysign(1.0, a) == math.copysign(1.0, b)  # type: ignore[arg-type]
