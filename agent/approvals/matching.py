"""Matching one detected change against the approved change records: a pure function.

Every change gets exactly one verdict. Candidates are the records for the same controller and tag.
A candidate authorizes when it is active, not used up (single use), trusted (signed by a trusted
key, if the policy requires signatures), its window (widened by the clock skew) contains the
change, and its expected value matches. Otherwise the closest candidate explains the verdict:

* trusted, window right, value wrong            -> ``value_mismatch``
* trusted, value right, window wrong            -> ``outside_window``
* unsigned or forged (``require_signed``)       -> ``approval_invalid`` (a security signal)
* revoked, used up, or neither window nor value -> ``unapproved``
* no candidate at all                           -> ``unapproved``

Example::

    >>> r = match_change(controller="press-01", tag="temperature_sp",
    ...                  change_kind=ChangeKind.SETPOINT_CHANGE, new_value=185.0,
    ...                  occurred_at=now, approvals=records, used=set(), policy=MatchPolicy())
    >>> r.verdict
    <Verdict.AUTHORIZED: 'authorized'>
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.approvals.model import (
    EN_DASH,
    ApprovedChange,
    ExactValue,
    MatchPolicy,
    MatchResult,
    RecipeRef,
    ValueRange,
    format_number,
)
from agent.approvals.signing import SignatureCheck, canonical_json, check_signature
from agent.contract import ChangeKind, TagValue, Verdict

#: Relative tolerance for numbers: float32 registers carry ~7 significant digits.
REL_TOL = 1e-6
RECIPE_KINDS = frozenset({ChangeKind.RECIPE_SWITCH, ChangeKind.RECIPE_EDIT})


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def numbers_equal(a: float, b: float) -> bool:
    """Equal within float32 precision: 185.00000762939453 equals 185.0."""
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-9)


def _normalise(value: Any) -> Any:
    """Floats rounded to float32 precision so a value read from a register hashes as written."""
    if isinstance(value, float):
        return float(f"{value:.7g}")
    if isinstance(value, Mapping):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    return value


def recipe_parameters_hash(parameters: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of a recipe's parameters (floats at float32 precision)."""
    return hashlib.sha256(canonical_json(_normalise(parameters))).hexdigest()


def show_value(value: TagValue) -> str:
    """A tag value in the words of an event reason."""
    if _is_number(value):
        return format_number(value)  # type: ignore[arg-type]
    if isinstance(value, Mapping):
        return f"recipe {value.get('id')} version {value.get('version')}"
    return repr(value)


def _exact_mismatch(expected: ExactValue, value: TagValue) -> str | None:
    if _is_number(expected.exact) and _is_number(value):
        if numbers_equal(float(expected.exact), float(value)):  # type: ignore[arg-type]
            return None
    elif type(expected.exact) is type(value) and expected.exact == value:
        return None
    unit = f" {expected.unit}" if expected.unit and _is_number(value) else ""
    return f"approved {expected.describe()}, got {show_value(value)}{unit}"


def _in_range(expected: ValueRange, value: float) -> bool:
    low_ok = expected.min is None or value >= expected.min or numbers_equal(value, expected.min)
    high_ok = expected.max is None or value <= expected.max or numbers_equal(value, expected.max)
    return low_ok and high_ok


def _range_mismatch(expected: ValueRange, value: TagValue) -> str | None:
    if _is_number(value) and _in_range(expected, float(value)):  # type: ignore[arg-type]
        return None
    unit = f" {expected.unit}" if expected.unit and _is_number(value) else ""
    return f"approved {expected.describe()}, got {show_value(value)}{unit}"


def _recipe_mismatch(expected: RecipeRef, kind: ChangeKind, value: TagValue) -> str | None:
    if kind not in RECIPE_KINDS or not isinstance(value, Mapping):
        return f"approved {expected.describe()}, got a {kind.value} to {show_value(value)}"
    got_id, got_version = value.get("id"), value.get("version")
    wrong_version = expected.recipe_version is not None and str(got_version) != str(
        expected.recipe_version
    )
    if str(got_id) != expected.recipe_id or wrong_version:
        return f"approved {expected.describe()}, got recipe {got_id} version {got_version}"
    if expected.parameters_hash:
        got_hash = recipe_parameters_hash(value.get("parameters") or {})
        if got_hash != expected.parameters_hash.lower():
            return (
                f"approved {expected.describe()}, got recipe {got_id} version {got_version} "
                f"with parameters hash {got_hash[:12]}"
            )
    return None


def value_mismatch(record: ApprovedChange, kind: ChangeKind, value: TagValue) -> str | None:
    """None when the new value is what the record approved, else why not, in plain words."""
    expected = record.expected
    if isinstance(expected, RecipeRef):
        return _recipe_mismatch(expected, kind, value)
    if kind in RECIPE_KINDS and isinstance(value, Mapping):
        # A whole recipe is approved by id and version, never by one number; a recipe that
        # is a single number (a recipe-select register) is approved like any other value.
        return f"approved {expected.describe()}, got a {kind.value} to {show_value(value)}"
    if isinstance(expected, ExactValue):
        return _exact_mismatch(expected, value)
    return _range_mismatch(expected, value)


def _clock(at: datetime, day: bool) -> str:
    fmt = "%Y-%m-%d %H:%M" if day else "%H:%M"
    return at.strftime(fmt + (":%S" if at.second or at.microsecond else ""))


def window_mismatch(record: ApprovedChange, at: datetime, skew_s: float) -> str | None:
    """None when ``at`` is inside the window widened by the skew, else the window and the time."""
    skew = timedelta(seconds=skew_s)
    if record.valid_from - skew <= at <= record.valid_until + skew:
        return None
    start, end = record.valid_from, record.valid_until
    same_day = start.date() == end.date()
    window = f"{_clock(start, True)}{EN_DASH}{_clock(end, not same_day)} UTC"
    when = _clock(at, at.date() != start.date() or not same_day)
    return f"approved for {window}, change at {when} UTC"


@dataclass(frozen=True)
class _Assessment:
    """One candidate judged against one change; ``rank`` orders how close it came."""

    record: ApprovedChange
    revoked: bool
    used: bool
    untrusted: str | None
    window: str | None
    value: str | None

    @property
    def authorizes(self) -> bool:
        usable = not (self.revoked or self.used or self.untrusted)
        return usable and self.window is None and self.value is None

    @property
    def rank(self) -> tuple[int, int, int, bool]:
        """Higher is closer: active first, then window+value, then a security signal first."""
        hits = (self.window is None) + (self.value is None)
        return (not self.revoked, hits, self.value is None, self.untrusted is not None)


def _untrusted(record: ApprovedChange, policy: MatchPolicy) -> str | None:
    if not policy.require_signed:
        return None
    check = check_signature(record, policy.trusted_keys)
    if check is SignatureCheck.VALID:
        return None
    if check is SignatureCheck.UNSIGNED:
        return f"approval {record.id} is not signed, and signed approvals are required"
    return (
        f"approval {record.id} has a signature that no trusted key verifies "
        "(forged, altered after signing, or signed by an unknown key)"
    )


def _assess(
    record: ApprovedChange, kind: ChangeKind, value: TagValue, at: datetime,
    used: Collection[str], policy: MatchPolicy,
) -> _Assessment:
    return _Assessment(
        record=record,
        revoked=record.status == "revoked",
        used=record.single_use and record.id in used,
        untrusted=_untrusted(record, policy),
        window=window_mismatch(record, at, policy.clock_skew_s),
        value=value_mismatch(record, kind, value),
    )


def _explain(best: _Assessment) -> tuple[Verdict, str]:
    """The verdict and its reason from the closest candidate that did not authorize."""
    rec = best.record
    if best.revoked:
        return Verdict.UNAPPROVED, f"approval {rec.id} was revoked"
    if best.untrusted:
        return Verdict.APPROVAL_INVALID, best.untrusted
    if best.used:
        return Verdict.UNAPPROVED, f"approval {rec.id} is single-use and was already used"
    if best.window is None and best.value is not None:
        return Verdict.VALUE_MISMATCH, best.value
    if best.value is None and best.window is not None:
        return Verdict.OUTSIDE_WINDOW, best.window
    return Verdict.UNAPPROVED, f"{best.window}; {best.value}"


def match_change(
    *,
    controller: str,
    tag: str,
    change_kind: ChangeKind,
    new_value: TagValue,
    occurred_at: datetime,
    approvals: Sequence[ApprovedChange],
    used: Collection[str],
    policy: MatchPolicy,
) -> MatchResult:
    """The one verdict on one change against the approved change records (see module doc).

    ``occurred_at`` is compared and reported in UTC; a naive time is taken to be UTC already.
    """
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=UTC)
    occurred_at = occurred_at.astimezone(UTC)
    found = [
        _assess(rec, change_kind, new_value, occurred_at, used, policy)
        for rec in approvals
        if rec.controller == controller and rec.tag == tag
    ]
    if not found:
        return MatchResult(
            verdict=Verdict.UNAPPROVED,
            reason=f"no approved change record for {controller}/{tag}",
        )
    winners = [a for a in found if a.authorizes]
    if winners:
        # A reusable approval first, so a single-use one is not spent when it need not be.
        chosen = min(winners, key=lambda a: a.record.single_use).record
        return MatchResult(
            verdict=Verdict.AUTHORIZED,
            approval=chosen.considered(None),
            reason=f"matches approval {chosen.id} by {chosen.approved_by}",
            consumed=chosen.id if chosen.single_use else None,
        )
    best = max(found, key=lambda a: a.rank)
    verdict, reason = _explain(best)
    return MatchResult(verdict=verdict, approval=best.record.considered(reason), reason=reason)
