"""The shipped joint criteria, rule by rule: pure, no broker, no clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from detectors.classification import ClassKind, Severity
from detectors.criteria import classify, load_criteria
from detectors.errors import CriteriaError
from tests.support.events import make_event

CRITERIA = load_criteria(Path(__file__).parents[2] / "config" / "criteria.yaml")
SUNDAY_NIGHT = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("overrides", "kind", "rules"),
    [
        pytest.param({}, ClassKind.JOINT, ("JQS-1",), id="unapproved CTQ setpoint"),
        pytest.param({"verdict": "authorized"}, ClassKind.NONE, (), id="authorized change"),
        pytest.param(
            {"verdict": "value_mismatch"}, ClassKind.JOINT, ("JQS-1", "Q-1"), id="wrong value"
        ),
        pytest.param(
            {"verdict": "approval_invalid"},
            ClassKind.JOINT,
            ("JQS-1", "JQS-2"),
            id="forged approval",
        ),
        pytest.param(
            {"change_kind": "recipe_switch", "tag": {"kind": "recipe"}},
            ClassKind.JOINT,
            ("JQS-1",),
            id="unapproved recipe switch",
        ),
        pytest.param(
            {"change_kind": "changed_while_unwatched"},
            ClassKind.JOINT,
            ("JQS-1",),
            id="changed while the agent was away",
        ),
        pytest.param(
            {"change_kind": "monitoring_gap", "tag": {"critical_to_quality": False}},
            ClassKind.JOINT,
            ("JQS-3",),
            id="gap on validated system",
        ),
        pytest.param(
            {
                "change_kind": "monitoring_gap",
                "controller": {"validated": False},
                "tag": {"critical_to_quality": False},
            },
            ClassKind.NONE,
            (),
            id="gap on non-validated system",
        ),
        pytest.param(
            {
                "change_kind": "program_change",
                "tag": {"kind": "program", "critical_to_quality": False},
            },
            ClassKind.JOINT,
            ("JQS-3",),
            id="program download",
        ),
        pytest.param(
            {"tag": {"critical_to_quality": False}},
            ClassKind.SECURITY_ONLY,
            ("S-1",),
            id="unapproved non-CTQ by unknown actor",
        ),
        pytest.param(
            {"tag": {"critical_to_quality": False}, "actor": "j.doe"},
            ClassKind.NONE,
            (),
            id="unapproved non-CTQ by a known actor",
        ),
        pytest.param(
            {"verdict": "outside_window", "tag": {"critical_to_quality": False}},
            ClassKind.NONE,
            (),
            id="non-CTQ outside window",
        ),
        pytest.param(
            {"occurred_at": SUNDAY_NIGHT}, ClassKind.JOINT, ("JQS-1", "S-2"), id="off hours"
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


def test_bad_criteria_file_names_key(tmp_path: Path) -> None:
    bad = tmp_path / "criteria.yaml"
    bad.write_text(
        "version: '1'\nrules:\n  - id: X\n    description: d\n    when: {verdict: [maybe]}\n"
        "    contributes: [quality]\n"
    )
    with pytest.raises(CriteriaError, match=r"criteria.yaml: rules\.0\.when\.verdict\.0"):
        load_criteria(bad)
