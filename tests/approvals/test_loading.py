"""Approvals files: every sample in config/ loads; every bad file names the file, key and fix."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.approvals import (
    ApprovalBook,
    ApprovalsFileError,
    ExactValue,
    MatchPolicy,
    load_approvals_file,
)
from agent.approvals.signing import signed_bytes
from agent.contract import ChangeKind, Verdict
from tests.approvals.factory import record, record_yaml

CONFIG = Path(__file__).resolve().parents[2] / "config"
SAMPLES = sorted(CONFIG.glob("approvals*.yaml"))


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_every_sample_loads(sample: Path) -> None:
    records = load_approvals_file(sample)
    assert records
    assert len({r.id for r in records}) == len(records)


def test_the_demo_sample_authorizes_press_and_not_oven() -> None:
    book = ApprovalBook([CONFIG / "approvals.yaml"], policy=MatchPolicy())
    (cr,) = [r for r in book.approvals() if r.id == "CR-2026-0001"]
    assert (cr.controller, cr.tag, cr.approved_by, cr.single_use) == (
        "press-01", "temperature_sp", "j.doe", False,
    )
    assert isinstance(cr.expected, ExactValue) and cr.expected.exact == 185.0
    assert cr.valid_from == datetime(2026, 1, 1, tzinfo=UTC)
    assert cr.valid_until == datetime(2030, 12, 31, 23, 59, 59, tzinfo=UTC)
    now = datetime(2026, 11, 23, 9, tzinfo=UTC)
    for _ in range(2):  # reusable: the demo may run twice
        press = book.decide(controller="press-01", tag="temperature_sp", new_value=185.0,
                            change_kind=ChangeKind.SETPOINT_CHANGE, occurred_at=now)
        assert press.verdict is Verdict.AUTHORIZED
    oven = book.decide(controller="oven-01", tag="temperature_sp", new_value=230.0,
                       change_kind=ChangeKind.SETPOINT_CHANGE, occurred_at=now)
    assert oven.verdict is Verdict.UNAPPROVED


def test_json_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "approvals.json"
    path.write_text(json.dumps({"approvals": [record_yaml()]}), encoding="utf-8")
    assert [r.id for r in load_approvals_file(path)] == ["CR-1"]


def test_explicit_offset_becomes_utc(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "a.yaml", {"approvals": [
        record_yaml() | {"valid_from": "2026-11-23T09:00:00+01:00"}
    ]})
    (rec,) = load_approvals_file(path)
    assert rec.valid_from == datetime(2026, 11, 23, 8, tzinfo=UTC)
    assert rec.valid_from.utcoffset() is not None and not rec.valid_from.utcoffset()


GOOD = record_yaml()
BAD_FILES: dict[str, tuple[Any, str, str]] = {
    # name: (document, key the message must name, words it must contain)
    "naive datetime": (
        {"approvals": [GOOD, GOOD | {"id": "CR-2", "valid_until": "2026-11-23T20:00:00"}]},
        "approvals[1].valid_until", "2026-11-23T20:00:00Z",
    ),
    "missing approver": (
        {"approvals": [{k: v for k, v in GOOD.items() if k != "approved_by"}]},
        "approvals[0].approved_by", "add it",
    ),
    "misspelt key": (
        {"approvals": [GOOD | {"aproved_by": "x"}]}, "approvals[0].aproved_by", "spelling",
    ),
    "expected of no known form": (
        {"approvals": [GOOD | {"expected": {"value": 185.0}}]}, "approvals[0].expected",
        "{exact: 185.0}",
    ),
    "exact and range mixed": (
        {"approvals": [GOOD | {"expected": {"exact": 185.0, "max": 190.0}}]},
        "approvals[0].expected.max", "remove it",
    ),
    "range upside down": (
        {"approvals": [GOOD | {"expected": {"min": 190.0, "max": 180.0}}]},
        "approvals[0].expected", "swap",
    ),
    "window ends before it starts": (
        {"approvals": [GOOD | {"valid_until": "2026-11-23T07:00:00Z"}]},
        "approvals[0].valid_until", "not after valid_from",
    ),
    "unknown status": (
        {"approvals": [GOOD | {"status": "paused"}]}, "approvals[0].status", "'active'",
    ),
    "duplicate id": (
        {"approvals": [GOOD, GOOD]}, "approvals[1].id", "own id",
    ),
    "change that does not fit expected": (
        {"approvals": [GOOD | {"change": "recipe_edit"}]}, "approvals[0]",
        "change: recipe_edit takes expected {parameters:",
    ),
    "unknown change": (
        {"approvals": [GOOD | {"change": "download"}]}, "approvals[0].change", "'recipe_edit'",
    ),
    "edit naming no parameter": (
        {"approvals": [GOOD | {"change": "recipe_edit", "expected": {"parameters": {}}}]},
        "approvals[0].expected.parameters", "at least 1",
    ),
    "parameters hash that is not one": (
        {"approvals": [GOOD | {"expected": {"recipe_id": 1, "parameters_hash": "abc"}}]},
        "approvals[0].expected.parameters_hash", "pattern",
    ),
    "list at the top": ([GOOD], "(top level)", "approvals:"),
    "empty file": (None, "(top level)", "approvals:"),
    "approvals not a list": ({"approvals": GOOD}, "approvals", "valid list"),
}


@pytest.mark.parametrize("doc,key,words", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_file_names_file_key_and_fix(tmp_path: Path, doc: Any, key: str, words: str) -> None:
    path = write_yaml(tmp_path / "approvals.yaml", doc)
    with pytest.raises(ApprovalsFileError) as err:
        load_approvals_file(path)
    message = str(err.value)
    assert f"{path}: {key}:" in message
    assert words in message
    assert "fix:" in message


@pytest.mark.parametrize("name,text,words", [
    ("a.yaml", "approvals: [\n  {id: CR-1", "not valid YAML"),
    ("a.json", '{"approvals": [', "not valid JSON"),
    ("a.yaml", b"\xff\xfe\x00approvals", "not UTF-8"),
])
def test_unparsable_file(tmp_path: Path, name: str, text: str | bytes, words: str) -> None:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ApprovalsFileError, match=words) as err:
        load_approvals_file(path)
    assert str(path) in str(err.value)


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ApprovalsFileError, match="cannot read the file") as err:
        load_approvals_file(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(err.value)


RECIPE_FILE = """\
approvals:
  - id: CR-12
    controller: press-01
    tag: active_recipe
    change: recipe_switch
    expected: {recipe_id: 12, recipe_version: 3}
    valid_from: 2026-11-23T08:00:00Z
    valid_until: 2026-11-23T20:00:00Z
    approved_by: a.novak
  - id: CR-13
    controller: press-01
    tag: active_recipe
    expected: {recipe_id: "13"}
    valid_from: 2026-11-23T08:00:00Z
    valid_until: 2026-11-23T20:00:00Z
    approved_by: a.novak
"""


def test_a_numeric_recipe_id_loads_and_matches_what_the_agent_reads(tmp_path: Path) -> None:
    """`recipe_id: 12` used to fail with "Input should be a valid string"."""
    path = tmp_path / "approvals.yaml"
    path.write_text(RECIPE_FILE, encoding="utf-8")
    twelve, thirteen = load_approvals_file(path)
    assert twelve.expected.recipe_id == 12  # type: ignore[union-attr]
    assert (twelve.approves, thirteen.approves) == ("recipe_switch", "recipe_switch")
    book = ApprovalBook([path], policy=MatchPolicy())
    at = datetime(2026, 11, 23, 9, tzinfo=UTC)
    for value in ({"id": 12, "version": 3, "parameters": {}}, {"id": "12", "version": "3"}):
        got = book.decide(controller="press-01", tag="active_recipe", new_value=value,
                          change_kind=ChangeKind.RECIPE_SWITCH, occurred_at=at)
        assert got.verdict is Verdict.AUTHORIZED and got.approval is not None
        assert got.approval.id == "CR-12"


def test_a_record_from_before_change_existed_signs_the_same_bytes() -> None:
    """Old signed files keep verifying: a record without `change` signs as it always did."""
    legacy = record(expected={"recipe_id": "R-100", "recipe_version": 3})
    assert legacy.change is None and legacy.approves == "recipe_switch"
    assert b'"change"' not in signed_bytes(legacy)
    assert b'"change":"recipe_switch"' in signed_bytes(record(
        change="recipe_switch", expected={"recipe_id": "R-100", "recipe_version": 3}))
