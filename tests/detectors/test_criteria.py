"""The shipped joint criteria: rule by rule, the whole decision space, and its table.

Pure: no broker, no clock. The decision space (`detectors.decision_space`) is enumerated here in
full: every combination must be decided on purpose, by a rule or a no-record decision, and
`classify` must decide each the way the table says.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.contract import SuspectChange
from detectors.classification import Classification, ClassKind, Severity
from detectors.correlate import NO_CONTEXT, EventContext
from detectors.criteria import (
    Criteria,
    classify,
    classify_all,
    classify_placed,
    load_criteria,
)
from detectors.criteria_table import decision_json, decision_table
from detectors.decision_space import Point, decide_all, points, undecided
from detectors.errors import CriteriaError
from tests.support.events import WORKDAY, make_event

ROOT = Path(__file__).parents[2]
SHIPPED = ROOT / "config" / "criteria.yaml"
CRITERIA = load_criteria(SHIPPED)
SUNDAY_NIGHT = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
NOT_CTQ = {"critical_to_quality": False}
NOT_VALIDATED = {"validated": False}


@pytest.mark.parametrize(
    ("overrides", "kind", "rules"),
    [
        pytest.param({}, ClassKind.JOINT, ("JQS-1",), id="unapproved CTQ setpoint"),
        pytest.param({"verdict": "authorized"}, ClassKind.NONE, (), id="authorized change"),
        pytest.param(
            {"verdict": "value_mismatch"}, ClassKind.JOINT, ("JQS-1", "Q-1"), id="wrong value"
        ),
        pytest.param(
            {"verdict": "approval_invalid"}, ClassKind.JOINT, ("JQS-1", "JQS-2"),
            id="forged approval",
        ),
        pytest.param(
            {"change_kind": "recipe_switch", "tag": {"kind": "recipe"}}, ClassKind.JOINT,
            ("JQS-1",), id="unapproved recipe switch",
        ),
        pytest.param(
            {"change_kind": "changed_while_unwatched"}, ClassKind.JOINT, ("JQS-1",),
            id="changed while the agent was away",
        ),
        pytest.param(
            {"change_kind": "monitoring_gap", "tag": NOT_CTQ}, ClassKind.JOINT, ("JQS-4",),
            id="gap on validated system",
        ),
        pytest.param(
            {"change_kind": "monitoring_gap", "controller": NOT_VALIDATED, "tag": NOT_CTQ},
            ClassKind.NONE, (), id="gap on non-validated system",
        ),
        pytest.param(
            {"change_kind": "monitoring_gap", "controller": NOT_VALIDATED},
            ClassKind.JOINT, ("DI-3",), id="a CTQ tag unwatched (its path no longer resolves)",
        ),
        pytest.param(
            {"change_kind": "program_change", "tag": {"kind": "program", **NOT_CTQ}},
            ClassKind.JOINT, ("JQS-3", "S-4"), id="program download on a validated controller",
        ),
        pytest.param(
            {"change_kind": "program_change", "tag": {"kind": "program", **NOT_CTQ},
             "controller": NOT_VALIDATED},
            ClassKind.SECURITY_ONLY, ("S-4",), id="program download, not validated",
        ),
        pytest.param(
            {"change_kind": "program_change", "tag": {"kind": "program", **NOT_CTQ},
             "verdict": "authorized"},
            ClassKind.NONE, (), id="approved program download",
        ),
        pytest.param(
            {"tag": NOT_CTQ}, ClassKind.JOINT, ("JQS-5", "S-1"),
            id="unapproved non-CTQ setpoint on a validated controller",
        ),
        pytest.param(
            {"tag": NOT_CTQ, "actor": "j.doe"}, ClassKind.JOINT, ("JQS-5",),
            id="unapproved non-CTQ on a validated controller by a known actor",
        ),
        pytest.param(
            {"tag": NOT_CTQ, "controller": NOT_VALIDATED}, ClassKind.SECURITY_ONLY, ("S-1",),
            id="unapproved non-CTQ by an unknown actor",
        ),
        pytest.param(
            {"tag": NOT_CTQ, "controller": NOT_VALIDATED, "actor": "j.doe"}, ClassKind.NONE, (),
            id="unapproved non-CTQ by a known actor, not validated",
        ),
        pytest.param(
            {"verdict": "value_mismatch", "tag": NOT_CTQ, "controller": NOT_VALIDATED},
            ClassKind.QUALITY_ONLY, ("Q-2",), id="non-CTQ value mismatch",
        ),
        pytest.param(
            {"verdict": "outside_window", "tag": NOT_CTQ, "controller": NOT_VALIDATED},
            ClassKind.QUALITY_ONLY, ("Q-2",), id="non-CTQ outside window",
        ),
        pytest.param(
            {"verdict": "value_mismatch", "tag": NOT_CTQ}, ClassKind.JOINT, ("JQS-5", "Q-2"),
            id="non-CTQ value mismatch on a validated controller",
        ),
        pytest.param(
            {"occurred_at": SUNDAY_NIGHT}, ClassKind.JOINT, ("JQS-1", "S-2"), id="off hours"
        ),
        pytest.param(
            {"change_kind": "mode_change", "tag": {"kind": "mode"}, "controller": NOT_VALIDATED},
            ClassKind.JOINT, ("JQS-1",), id="CTQ mode change, not validated",
        ),
    ],
)
def test_shipped_rules(overrides: dict[str, Any], kind: ClassKind, rules: tuple[str, ...]) -> None:
    result = classify(make_event(**overrides), CRITERIA)
    assert (result.kind, result.rules_fired) == (kind, rules)
    assert result.criteria_version == CRITERIA.version


def test_classification_carries_severity_attack_and_key() -> None:
    result = classify(make_event(verdict="approval_invalid"), CRITERIA)
    assert result.severity is Severity.CRITICAL
    assert result.attack_techniques == ("T0831", "T0836")
    assert result.correlation_key == "plant-1/oven-01"
    assert "200.0 -> 230.0 degC" in result.description


def test_every_combination_is_decided_one_way() -> None:
    decisions = decide_all(CRITERIA)
    assert len(decisions) == len(set(points())) > 1000
    open_ = [d.point for d in decisions if not d.rules and not d.no_record]
    both = [d.point for d in decisions if d.rules and d.no_record]
    assert open_ == [] and both == []


def realise(point: Point) -> tuple[SuspectChange, EventContext]:
    """An event and its context that sit exactly at ``point`` of the decision space."""
    event = make_event(
        verdict=point.verdict, change_kind=point.change_kind,
        tag={"kind": point.tag_kind, "critical_to_quality": point.critical_to_quality},
        controller={"validated": point.controller_validated},
        occurred_at=SUNDAY_NIGHT if point.off_hours else WORKDAY,
        actor=None if point.unknown_actor else "m.keller",
    )
    if point.burst or point.integrity:
        return event, EventContext(burst_controllers=3 * point.burst, correlation_key="k",
                                   integrity=point.integrity)
    return event, NO_CONTEXT


def test_classify_decides_every_combination_as_the_table_says() -> None:
    for decision in decide_all(CRITERIA):
        event, context = realise(decision.point)
        result = classify(event, CRITERIA, context)
        assert result.rules_fired == tuple(r.id for r in decision.rules), decision.point
        assert result.opens_record is bool(decision.rules), decision.point


def test_classify_all_is_classify_per_event() -> None:
    """The batch forms (`classify_placed` is what the recorder calls) give each event what
    `classify` gives it, in order, over every combination of the space."""
    placed = [realise(decision.point) for decision in decide_all(CRITERIA)]
    each = [classify(event, CRITERIA, context) for event, context in placed]
    assert classify_all(placed, CRITERIA) == each
    tokens = [(event, context, n) for n, (event, context) in enumerate(placed)]
    assert classify_placed(tokens, CRITERIA) == [
        (event, cls) for (event, _), cls in zip(placed, each, strict=True)
    ]


def shipped_data() -> dict[str, Any]:
    return yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "criteria.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_a_hole_in_the_criteria_refuses_to_load_and_names_it(tmp_path: Path) -> None:
    """Take out Q-2: a value mismatch on a non-critical tag of a non-validated controller is
    then decided by nothing (the issue's very case)."""
    data = shipped_data()
    data["rules"] = [r for r in data["rules"] if r["id"] != "Q-2"]
    path = write(tmp_path, data)
    assert undecided(Criteria.model_validate(data))
    with pytest.raises(CriteriaError) as caught:
        load_criteria(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: no rule and no no_record decision covers ")
    assert "critical_to_quality=false" in message and "controller_validated=false" in message
    assert re.search(r"e\.g\. verdict=(outside_window|value_mismatch), change_kind=", message)
    assert "fix: add a rule" in message and "no_record" in message


def test_a_no_record_decision_that_contradicts_a_rule_refuses_to_load(tmp_path: Path) -> None:
    data = shipped_data()
    data["no_record"].append({"id": "N-9", "description": "value mismatches are fine",
                              "when": {"verdict": ["value_mismatch"]}})
    with pytest.raises(CriteriaError, match=r"no_record N-9 and rule Q-2 both decide \d+ "
                       r"combination.*fix: narrow the `when` of one of them"):
        load_criteria(write(tmp_path, data))


def test_duplicate_ids_across_rules_and_decisions(tmp_path: Path) -> None:
    data = shipped_data()
    data["no_record"][0]["id"] = "JQS-1"
    with pytest.raises(CriteriaError, match="duplicate id"):
        load_criteria(write(tmp_path, data))


def test_bad_criteria_file_names_key(tmp_path: Path) -> None:
    bad = tmp_path / "criteria.yaml"
    bad.write_text(
        "version: '1'\nrules:\n  - id: X\n    description: d\n    when: {verdict: [maybe]}\n"
        "    contributes: [quality]\n"
    )
    with pytest.raises(CriteriaError, match=r"criteria.yaml: rules\.0\.when\.verdict\.0"):
        load_criteria(bad)


def readme_table() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- decision-table:begin -->\n(.*?)<!-- decision-table:end -->",
                      text, flags=re.S)
    assert found, "README.md has no decision table between its markers"
    return found.group(1)


@pytest.mark.integration
def test_the_readme_shows_the_table_explain_prints() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "detectors.cli", "criteria", "explain",
         "--config", "config/classifier.yaml"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == decision_table(CRITERIA)
    assert readme_table() == result.stdout, (
        "the README's decision table is stale: paste `otwatch-classifier criteria explain` "
        "between its markers"
    )


@pytest.mark.integration
def test_explain_json_lists_every_combination() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "detectors.cli", "criteria", "explain", "--json",
         "--criteria", str(SHIPPED)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data == json.loads(json.dumps(decision_json(CRITERIA)))
    assert len(data["combinations"]) == len(decide_all(CRITERIA))
    mismatch = next(c for c in data["combinations"] if c == {
        **c, "verdict": "value_mismatch", "change_kind": "setpoint_change",
        "critical_to_quality": False, "controller_validated": False, "off_hours": False,
        "unknown_actor": True, "burst": False, "integrity": "none"})
    assert mismatch["decision"] == "quality only, low (Q-2)" and mismatch["rules"] == ["Q-2"]


@pytest.mark.integration
def test_explain_refuses_a_broken_file(tmp_path: Path) -> None:
    data = shipped_data()
    data["no_record"] = []
    result = subprocess.run(
        [sys.executable, "-m", "detectors.cli", "criteria", "explain",
         "--criteria", str(write(tmp_path, data))],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert "verdict=authorized" in result.stderr and "fix:" in result.stderr


@pytest.mark.parametrize("context", [NO_CONTEXT, EventContext(
    burst_controllers=3, correlation_key="plant-1/oven-02", line_key="burst:plant-1/line-1")])
def test_a_classification_built_without_validation_is_the_validated_model(
    context: EventContext,
) -> None:
    made = classify(make_event(), CRITERIA, context)
    again = Classification.model_validate(made.model_dump())
    assert made == again and hash(made) == hash(again)
    assert made.model_dump_json() == again.model_dump_json()
    assert made.model_fields_set == again.model_fields_set
    with pytest.raises(ValueError, match="frozen"):
        made.kind = ClassKind.NONE  # type: ignore[misc]
    assert made.model_copy(update={"line_key": "x"}).line_key == "x"
    assert made.line_key == (context.line_key or "")
