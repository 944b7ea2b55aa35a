"""The verdict table: every verdict, window edges, skew, ranges, single use, revocation, signatures.

Pure: no files, no broker, no clock. Each row is one change against a set of records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.approvals import ApprovedChange, MatchPolicy, match_change, recipe_parameters_hash
from agent.approvals.signing import sign_approval
from agent.contract import ChangeKind, TagKind, TagValue, Verdict
from tests.approvals.factory import (
    KEY_PRIVATE,
    KEY_PUBLIC,
    OTHER_PRIVATE,
    OTHER_PUBLIC,
    at,
    record,
)

SIGNED = MatchPolicy(require_signed=True, trusted_keys=[KEY_PUBLIC])
NO_SKEW = MatchPolicy(clock_skew_s=0)
RECIPE = {"id": "R-100", "version": 3, "parameters": {"temperature": 200.0, "dwell": 30}}
RECIPE_HASH = recipe_parameters_hash(RECIPE["parameters"])  # type: ignore[arg-type]
RANGE = {"min": 180.0, "max": 185.0, "unit": "°C"}


def signed(**changes: Any) -> ApprovedChange:
    return sign_approval(record(**changes), KEY_PRIVATE)


def tampered() -> ApprovedChange:
    """Signed for 185.0, then the expected value edited to 190.0 without re-signing."""
    good = signed()
    return ApprovedChange.model_validate(
        {**good.model_dump(), "expected": {"exact": 190.0}}
    )


@dataclass(frozen=True)
class Case:
    records: Callable[[], list[ApprovedChange]]
    verdict: Verdict
    value: TagValue = 185.0
    when: datetime = field(default_factory=lambda: at(12))
    kind: ChangeKind = ChangeKind.SETPOINT_CHANGE
    policy: MatchPolicy = NO_SKEW
    used: frozenset[str] = frozenset()
    reason: str | None = None  # the exact words, when the row is about the words
    approval: str | None = "CR-1"
    consumed: str | None = None
    old: TagValue = None
    tag_kind: TagKind | None = None


CASES: dict[str, Case] = {
    # authorized, and the value edges of exact numbers
    "exact value": Case(lambda: [record()], Verdict.AUTHORIZED),
    "float32 register noise": Case(lambda: [record()], Verdict.AUTHORIZED, 185.00000762939453),
    "int equals float": Case(lambda: [record()], Verdict.AUTHORIZED, 185),
    "exact text (mode)": Case(
        lambda: [record(expected={"exact": "AUTO"})], Verdict.AUTHORIZED, "AUTO",
        kind=ChangeKind.MODE_CHANGE,
    ),
    "flag is not a number": Case(
        lambda: [record(expected={"exact": True})], Verdict.VALUE_MISMATCH, 1,
        reason="approved exactly True, got 1",
    ),
    # value_mismatch
    "wrong exact value": Case(
        lambda: [record()], Verdict.VALUE_MISMATCH, 190.0,
        reason="approved exactly 185.0, got 190.0",
    ),
    "wrong exact value with unit": Case(
        lambda: [record(expected={"exact": 185.0, "unit": "°C"})], Verdict.VALUE_MISMATCH, 190.0,
        reason="approved exactly 185.0 °C, got 190.0 °C",
    ),
    "beyond float32 precision": Case(lambda: [record()], Verdict.VALUE_MISMATCH, 185.001),
    # ranges: inclusive bounds
    "range low bound": Case(lambda: [record(expected=RANGE)], Verdict.AUTHORIZED, 180.0),
    "range high bound": Case(lambda: [record(expected=RANGE)], Verdict.AUTHORIZED, 185.0),
    "range high bound float32": Case(
        lambda: [record(expected=RANGE)], Verdict.AUTHORIZED, 185.00000762939453
    ),
    "range inside": Case(lambda: [record(expected=RANGE)], Verdict.AUTHORIZED, 182.5),
    "range above": Case(
        lambda: [record(expected=RANGE)], Verdict.VALUE_MISMATCH, 190.0,
        reason="approved 180.0–185.0 °C, got 190.0 °C",  # noqa: RUF001
    ),
    "range just below": Case(lambda: [record(expected=RANGE)], Verdict.VALUE_MISMATCH, 179.99),
    "range min only": Case(
        lambda: [record(expected={"min": 100.0})], Verdict.VALUE_MISMATCH, 99.0,
        reason="approved at least 100.0, got 99.0",
    ),
    "range text value": Case(lambda: [record(expected=RANGE)], Verdict.VALUE_MISMATCH, "185"),
    # window edges (no skew), then skew
    "exactly at valid_from": Case(lambda: [record()], Verdict.AUTHORIZED, when=at(8)),
    "exactly at valid_until": Case(lambda: [record()], Verdict.AUTHORIZED, when=at(20)),
    "1 s before valid_from": Case(
        lambda: [record()], Verdict.OUTSIDE_WINDOW, when=at(7, 59, 59),
        reason="approved for 2026-11-23 08:00–20:00 UTC, change at 07:59:59 UTC",  # noqa: RUF001
    ),
    "1 s after valid_until": Case(
        lambda: [record()], Verdict.OUTSIDE_WINDOW, when=at(20, 0, 1),
    ),
    "evening change": Case(
        lambda: [record()], Verdict.OUTSIDE_WINDOW, when=at(21, 14),
        reason="approved for 2026-11-23 08:00–20:00 UTC, change at 21:14 UTC",  # noqa: RUF001
    ),
    "next day": Case(
        lambda: [record()], Verdict.OUTSIDE_WINDOW, when=at(9) + timedelta(days=1),
        reason="approved for 2026-11-23 08:00–20:00 UTC, change at 2026-11-24 09:00 UTC",  # noqa: RUF001
    ),
    "inside skew after": Case(
        lambda: [record()], Verdict.AUTHORIZED, when=at(20, 0, 30), policy=MatchPolicy(),
    ),
    "beyond skew after": Case(
        lambda: [record()], Verdict.OUTSIDE_WINDOW, when=at(20, 0, 31), policy=MatchPolicy(),
    ),
    "inside skew before": Case(
        lambda: [record()], Verdict.AUTHORIZED, when=at(7, 59, 30), policy=MatchPolicy(),
    ),
    "beyond skew before": Case(
        lambda: [record()], Verdict.OUTSIDE_WINDOW, when=at(7, 59, 29), policy=MatchPolicy(),
    ),
    "change time with an offset": Case(
        lambda: [record()], Verdict.OUTSIDE_WINDOW,
        when=datetime.fromisoformat("2026-11-23T22:14:00+01:00"),
        reason="approved for 2026-11-23 08:00–20:00 UTC, change at 21:14 UTC",  # noqa: RUF001
    ),
    "naive change time is UTC": Case(
        lambda: [record()], Verdict.AUTHORIZED, when=datetime(2026, 11, 23, 19, 59),
    ),
    "offset in the file": Case(
        lambda: [record(valid_from="2026-11-23T09:00:00+01:00")], Verdict.AUTHORIZED, when=at(8),
    ),
    # unapproved
    "no record at all": Case(
        list, Verdict.UNAPPROVED, approval=None,
        reason="no approved change record for press-01/temperature_sp",
    ),
    "record for another controller": Case(
        lambda: [record(controller="oven-01")], Verdict.UNAPPROVED, approval=None,
    ),
    "record for another tag": Case(
        lambda: [record(tag="pressure_sp")], Verdict.UNAPPROVED, approval=None,
    ),
    "wrong value and wrong time": Case(
        lambda: [record()], Verdict.UNAPPROVED, 190.0, when=at(21, 14),
        reason="approved for 2026-11-23 08:00–20:00 UTC, change at 21:14 UTC; "  # noqa: RUF001
        "approved exactly 185.0, got 190.0",
    ),
    # single use
    "single use, first change": Case(
        lambda: [record(single_use=True)], Verdict.AUTHORIZED, consumed="CR-1",
    ),
    "single use, already used": Case(
        lambda: [record(single_use=True)], Verdict.UNAPPROVED, used=frozenset({"CR-1"}),
        reason="approval CR-1 is single-use and was already used",
    ),
    "used id of a reusable record": Case(
        lambda: [record()], Verdict.AUTHORIZED, used=frozenset({"CR-1"}),
    ),
    "reusable preferred over single use": Case(
        lambda: [record(id="CR-0", single_use=True), record()], Verdict.AUTHORIZED,
    ),
    "second single use after first used": Case(
        lambda: [record(single_use=True), record(id="CR-2", single_use=True)],
        Verdict.AUTHORIZED, used=frozenset({"CR-1"}), approval="CR-2", consumed="CR-2",
    ),
    # revocation by status (tombstones are the book's: see test_book)
    "revoked": Case(
        lambda: [record(status="revoked")], Verdict.UNAPPROVED,
        reason="approval CR-1 was revoked",
    ),
    "revoked, another active one mismatches": Case(
        lambda: [record(status="revoked"), record(id="CR-2", expected={"exact": 180.0})],
        Verdict.VALUE_MISMATCH, approval="CR-2",
    ),
    # closest candidate
    "right value tomorrow beats wrong value today": Case(
        lambda: [record(id="CR-2", expected={"exact": 190.0}),
                 record(valid_from="2026-11-24T08:00:00Z", valid_until="2026-11-24T20:00:00Z")],
        Verdict.OUTSIDE_WINDOW,
    ),
    "one of several authorizes": Case(
        lambda: [record(id="CR-2", expected={"exact": 190.0}), record()], Verdict.AUTHORIZED,
    ),
    # signatures
    "signed, signatures required": Case(lambda: [signed()], Verdict.AUTHORIZED, policy=SIGNED),
    "signed, second trusted key": Case(
        lambda: [sign_approval(record(), OTHER_PRIVATE)], Verdict.AUTHORIZED,
        policy=MatchPolicy(require_signed=True, trusted_keys=[KEY_PUBLIC, OTHER_PUBLIC]),
    ),
    "unsigned, signatures required": Case(
        lambda: [record()], Verdict.APPROVAL_INVALID, policy=SIGNED,
        reason="approval CR-1 is not signed, and signed approvals are required",
    ),
    "signed by an unknown key": Case(
        lambda: [sign_approval(record(), OTHER_PRIVATE)], Verdict.APPROVAL_INVALID,
        policy=SIGNED,
    ),
    "tampered field": Case(lambda: [tampered()], Verdict.APPROVAL_INVALID, 190.0, policy=SIGNED),
    "tampered window": Case(
        lambda: [signed().model_copy(update={"valid_until": at(23)})], Verdict.APPROVAL_INVALID,
        when=at(22), policy=SIGNED,
    ),
    "garbage signature": Case(
        lambda: [record(signature="not-base64!")], Verdict.APPROVAL_INVALID, policy=SIGNED,
    ),
    "forged beside a valid one": Case(
        lambda: [tampered().model_copy(update={"id": "CR-9"}), signed()], Verdict.AUTHORIZED,
        policy=SIGNED,
    ),
    "forged exact match beats signed mismatch": Case(
        lambda: [signed(id="CR-2", expected={"exact": 180.0}), tampered()],
        Verdict.APPROVAL_INVALID, 190.0, policy=SIGNED,
    ),
    "tampered, signatures not required": Case(lambda: [tampered()], Verdict.AUTHORIZED, 190.0),
    "signed, right value, wrong time": Case(
        lambda: [signed()], Verdict.OUTSIDE_WINDOW, when=at(21), policy=SIGNED,
    ),
    # what an approval approves: the kind of change, then its value (see KINDS below)
    "recipe approval, setpoint change": Case(
        lambda: [record(expected={"recipe_id": "R-100", "recipe_version": 3})],
        Verdict.UNAPPROVED, 185.0,
        reason="no approved change record for press-01/temperature_sp covers a setpoint "
        "change: approval CR-1 approves a recipe switch (recipe R-100 version 3)",
    ),
    "setpoint approval, recipe switch": Case(
        lambda: [record()], Verdict.UNAPPROVED, RECIPE, kind=ChangeKind.RECIPE_SWITCH,
    ),
    "recipe-select register: exact number approved": Case(
        lambda: [record(expected={"exact": 2})], Verdict.AUTHORIZED, 2,
        kind=ChangeKind.RECIPE_SWITCH,
    ),
    "recipe-select register: another number": Case(
        lambda: [record(expected={"exact": 2})], Verdict.VALUE_MISMATCH, 3,
        kind=ChangeKind.RECIPE_SWITCH, reason="approved exactly 2, got 3",
    ),
}

SWITCH = {"change": "recipe_switch", "expected": {"recipe_id": "R-100", "recipe_version": 3}}
EDITED = {**RECIPE, "parameters": {"temperature": 210.0, "dwell": 30}}


def edit(parameters: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"change": "recipe_edit", "expected": {"parameters": parameters, **more}}


def one(**changes: Any) -> Callable[[], list[ApprovedChange]]:
    return lambda: [record(**changes)]


#: Approval kinds: switch vs edit vs program vs mode vs setpoint, recipe ids as numbers and text.
KINDS: dict[str, Case] = {
    "switch": Case(one(**SWITCH), Verdict.AUTHORIZED, RECIPE, kind=ChangeKind.RECIPE_SWITCH),
    "switch, version as text": Case(
        one(change="recipe_switch", expected={"recipe_id": "R-100", "recipe_version": "3"}),
        Verdict.AUTHORIZED, RECIPE, kind=ChangeKind.RECIPE_SWITCH,
    ),
    "switch, wrong version": Case(
        one(**SWITCH), Verdict.VALUE_MISMATCH, {**RECIPE, "version": 4},
        kind=ChangeKind.RECIPE_SWITCH,
        reason="approved recipe R-100 version 3, got recipe R-100 version 4",
    ),
    "a switch approval never covers a later edit": Case(
        one(**SWITCH), Verdict.UNAPPROVED, EDITED, kind=ChangeKind.RECIPE_EDIT, old=RECIPE,
        reason="no approved change record for press-01/temperature_sp covers a recipe edit: "
        "approval CR-1 approves a recipe switch (recipe R-100 version 3)",
    ),
    "a switch approval from an old file (no change key) is a switch": Case(
        one(expected={"recipe_id": "R-100", "recipe_version": 3}), Verdict.UNAPPROVED, EDITED,
        kind=ChangeKind.RECIPE_EDIT, old=RECIPE,
    ),
    "switch, number in the file, number read": Case(
        one(change="recipe_switch", expected={"recipe_id": 12}), Verdict.AUTHORIZED,
        {**RECIPE, "id": 12}, kind=ChangeKind.RECIPE_SWITCH,
    ),
    "switch, number in the file, text read": Case(
        one(change="recipe_switch", expected={"recipe_id": 12}), Verdict.AUTHORIZED,
        {**RECIPE, "id": "12"}, kind=ChangeKind.RECIPE_SWITCH,
    ),
    "switch, text in the file, number read": Case(
        one(change="recipe_switch", expected={"recipe_id": "12", "recipe_version": 2}),
        Verdict.AUTHORIZED, {**RECIPE, "id": 12, "version": 2.0}, kind=ChangeKind.RECIPE_SWITCH,
    ),
    "switch, another number": Case(
        one(change="recipe_switch", expected={"recipe_id": 12}), Verdict.VALUE_MISMATCH,
        {**RECIPE, "id": 13}, kind=ChangeKind.RECIPE_SWITCH,
    ),
    "switch of a recipe-select register, by id": Case(
        one(change="recipe_switch", expected={"recipe_id": 2}), Verdict.AUTHORIZED, 2,
        kind=ChangeKind.RECIPE_SWITCH,
    ),
    "switch of a recipe-select register, another id": Case(
        one(change="recipe_switch", expected={"recipe_id": "2"}), Verdict.VALUE_MISMATCH, 3,
        kind=ChangeKind.RECIPE_SWITCH, reason="approved recipe 2, got recipe 3",
    ),
    "switch with the parameters hash": Case(
        one(change="recipe_switch", expected={"recipe_id": "R-100", "recipe_version": 3,
                                              "parameters_hash": RECIPE_HASH}),
        Verdict.AUTHORIZED,
        {**RECIPE, "parameters": {"temperature": 200.00000762939453, "dwell": 30.0}},
        kind=ChangeKind.RECIPE_SWITCH,
    ),
    "switch with the parameters hash, other parameters": Case(
        one(change="recipe_switch", expected={"recipe_id": "R-100", "recipe_version": 3,
                                              "parameters_hash": RECIPE_HASH}),
        Verdict.VALUE_MISMATCH, EDITED, kind=ChangeKind.RECIPE_SWITCH,
    ),
    "edit of a named parameter to its value": Case(
        one(**edit({"temperature": 210.0})), Verdict.AUTHORIZED, EDITED,
        kind=ChangeKind.RECIPE_EDIT, old=RECIPE,
    ),
    "edit within a range, id and version named": Case(
        one(**edit({"temperature": {"min": 205, "max": 215}}, recipe_id="R-100",
                   recipe_version="3")),
        Verdict.AUTHORIZED, EDITED, kind=ChangeKind.RECIPE_EDIT, old=RECIPE,
    ),
    "edit outside the approved range": Case(
        one(**edit({"temperature": {"min": 195, "max": 205}})), Verdict.VALUE_MISMATCH, EDITED,
        kind=ChangeKind.RECIPE_EDIT, old=RECIPE,
        reason="approved temperature 195.0–205.0, got 210.0",  # noqa: RUF001
    ),
    "edit of a parameter the approval does not name": Case(
        one(**edit({"temperature": 210.0})), Verdict.VALUE_MISMATCH,
        {**RECIPE, "parameters": {"temperature": 210.0, "dwell": 35}},
        kind=ChangeKind.RECIPE_EDIT, old=RECIPE,
        reason="approved an edit of temperature only, but dwell 30 -> 35",
    ),
    "edit of another recipe than the one approved": Case(
        one(**edit({"temperature": 210.0}, recipe_id="R-200")), Verdict.VALUE_MISMATCH, EDITED,
        kind=ChangeKind.RECIPE_EDIT, old=RECIPE,
        reason="approved an edit of recipe R-200, got recipe R-100",
    ),
    "edit to another version than approved": Case(
        one(**edit({"temperature": 210.0}, recipe_version=4)), Verdict.VALUE_MISMATCH, EDITED,
        kind=ChangeKind.RECIPE_EDIT, old=RECIPE,
    ),
    "an edit approval does not cover a switch": Case(
        one(**edit({"temperature": 210.0})), Verdict.UNAPPROVED, {**EDITED, "id": "R-200"},
        kind=ChangeKind.RECIPE_SWITCH, old=RECIPE,
    ),
    "program checksum (hex case does not matter)": Case(
        one(change="program", expected={"checksum": "4B1D9E07C3A25F88"}), Verdict.AUTHORIZED,
        "4b1d9e07c3a25f88", kind=ChangeKind.PROGRAM_CHANGE,
    ),
    "program, another checksum": Case(
        one(change="program", expected={"checksum": "4b1d9e07c3a25f88"}),
        Verdict.VALUE_MISMATCH, "e3a0c55d19b7f402", kind=ChangeKind.PROGRAM_CHANGE,
        reason="approved program checksum 4b1d9e07c3a25f88, got 'e3a0c55d19b7f402'",
    ),
    "a program approval does not cover a setpoint change": Case(
        one(change="program", expected={"checksum": "185"}), Verdict.UNAPPROVED, 185.0,
    ),
    "an exact value from an old file covers a program change": Case(
        one(expected={"exact": "4b1d9e07c3a25f88"}), Verdict.AUTHORIZED, "4b1d9e07c3a25f88",
        kind=ChangeKind.PROGRAM_CHANGE,
    ),
    "mode": Case(
        one(change="mode", expected={"exact": "MAINTENANCE"}), Verdict.AUTHORIZED,
        "MAINTENANCE", kind=ChangeKind.MODE_CHANGE,
    ),
    "a mode approval does not cover a setpoint change": Case(
        one(change="mode", expected={"exact": 185.0}), Verdict.UNAPPROVED, 185.0,
    ),
    "a setpoint approval does not cover a mode change": Case(
        one(change="setpoint", expected={"exact": "AUTO"}), Verdict.UNAPPROVED, "AUTO",
        kind=ChangeKind.MODE_CHANGE,
    ),
    "an exact value from an old file never approves a whole recipe": Case(
        one(expected={"exact": 2}), Verdict.UNAPPROVED, {**RECIPE, "id": 2},
        kind=ChangeKind.RECIPE_SWITCH,
    ),
    "changed while unwatched, setpoint": Case(
        one(change="setpoint", expected={"exact": 185.0}), Verdict.AUTHORIZED,
        kind=ChangeKind.CHANGED_WHILE_UNWATCHED, tag_kind=TagKind.SETPOINT,
    ),
    "changed while unwatched, program": Case(
        one(change="program", expected={"checksum": "c0ffee"}), Verdict.AUTHORIZED, "c0ffee",
        kind=ChangeKind.CHANGED_WHILE_UNWATCHED, tag_kind=TagKind.PROGRAM,
    ),
    "changed while unwatched, recipe with a new id is a switch": Case(
        one(**SWITCH), Verdict.AUTHORIZED, RECIPE, kind=ChangeKind.CHANGED_WHILE_UNWATCHED,
        tag_kind=TagKind.RECIPE, old={**RECIPE, "id": "R-050"},
    ),
    "changed while unwatched, recipe with the same id is an edit": Case(
        one(**SWITCH), Verdict.UNAPPROVED, EDITED, kind=ChangeKind.CHANGED_WHILE_UNWATCHED,
        tag_kind=TagKind.RECIPE, old=RECIPE,
    ),
    "changed while unwatched, an approved edit": Case(
        one(**edit({"temperature": 210.0})), Verdict.AUTHORIZED, EDITED,
        kind=ChangeKind.CHANGED_WHILE_UNWATCHED, tag_kind=TagKind.RECIPE, old=RECIPE,
    ),
}
CASES.update(KINDS)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_verdict(case: Case) -> None:
    result = match_change(
        controller="press-01",
        tag="temperature_sp",
        change_kind=case.kind,
        new_value=case.value,
        occurred_at=case.when,
        approvals=case.records(),
        used=case.used,
        policy=case.policy,
        tag_kind=case.tag_kind,
        old_value=case.old,
    )
    assert result.verdict is case.verdict, result.reason
    assert result.consumed == case.consumed
    assert (result.approval.id if result.approval else None) == case.approval
    if case.reason is not None:
        assert result.reason == case.reason
    if result.approval is not None and case.verdict is not Verdict.AUTHORIZED:
        assert result.approval.why_not_matched == result.reason
    if case.verdict is Verdict.AUTHORIZED:
        assert result.approval is not None and result.approval.why_not_matched is None


def test_every_verdict_is_in_the_table() -> None:
    assert {c.verdict for c in CASES.values()} == set(Verdict)


def test_policy_refuses_required_signatures_without_keys() -> None:
    with pytest.raises(ValueError, match="trusted key"):
        MatchPolicy(require_signed=True)


def test_policy_refuses_a_malformed_key() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        MatchPolicy(trusted_keys=["AAAA"])


@given(
    low=st.floats(-1e6, 1e6), width=st.floats(0, 1e3), value=st.floats(-2e6, 2e6),
    minutes=st.integers(0, 24 * 60 - 1),
)
def test_range_and_window_agree_with_arithmetic(
    low: float, width: float, value: float, minutes: int
) -> None:
    """Inside both the range and the window: authorized; one of them off: its own verdict."""
    high = low + width
    rec = record(expected={"min": low, "max": high})
    when = at(0) + timedelta(minutes=minutes)
    result = match_change(
        controller="press-01", tag="temperature_sp", change_kind=ChangeKind.SETPOINT_CHANGE,
        new_value=value, occurred_at=when, approvals=[rec], used=(), policy=NO_SKEW,
    )
    in_window = at(8) <= when <= at(20)
    tol = 1e-6 * max(abs(low), abs(high), 1.0)
    if low + tol < value < high - tol or low == value or value == high:
        expected = Verdict.AUTHORIZED if in_window else Verdict.OUTSIDE_WINDOW
        assert result.verdict is expected
    elif value < low - tol or value > high + tol:
        expected = Verdict.VALUE_MISMATCH if in_window else Verdict.UNAPPROVED
        assert result.verdict is expected
