"""Record-store fixtures: one store per test on SQLite (tmp_path) and on PostgreSQL (own schema)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from agent.contract import SuspectChange
from detectors.classification import Classification, ClassKind, Severity
from detectors.records import RecordStore, open_store
from tests.records.people import enrol

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    """A schema of its own, dropped after the test, so parallel runs never collide."""
    name = f"t_{uuid.uuid4().hex}"
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store_target(request: pytest.FixtureRequest, tmp_path: Any) -> tuple[str, str | None]:
    """(target, schema) for a fresh, unmigrated database of either dialect."""
    if request.param == "sqlite":
        return str(tmp_path / "records.db"), None
    dsn: str = request.getfixturevalue("pg_dsn")
    schema: str = request.getfixturevalue("pg_schema")
    return dsn, schema


@pytest.fixture
def store(store_target: tuple[str, str | None]) -> Iterator[RecordStore]:
    target, schema = store_target
    opened = open_store(target, schema=schema)
    opened.migrate()
    enrol(opened, T0)
    yield opened
    opened.close()


def event(
    n: int, *, controller: str = "press-01", tag: str = "ZoneTemp", minutes: float = 0,
    new_value: Any = 215.0, approval: bool = False,
) -> SuspectChange:
    at = T0 + timedelta(minutes=minutes)
    data: dict[str, Any] = {
        "event_id": f"ev-{n}", "seq": n, "agent_id": "agent-1", "site": "plant-1",
        "line": "line-a",
        "controller": {"id": controller, "protocol": "opcua", "endpoint": "opc.tcp://x:4840",
                       "validated": True},
        "tag": {"name": tag, "address": "ns=2;s=" + tag, "kind": "setpoint",
                "critical_to_quality": True, "unit": "degC"},
        "old_value": 200.0, "new_value": new_value,
        "occurred_at": at - timedelta(seconds=30), "detected_at": at,
        "change_kind": "setpoint_change", "verdict": "unapproved",
        "context": {"lot": "LOT-7", "recipe": "R-12"},
    }
    if approval:
        data["approval"] = {"id": "CC-1", "valid_from": T0, "valid_until": T0,
                            "approved_by": "qa", "why_not_matched": "outside window"}
    return SuspectChange.model_validate(data)


def classified(
    kind: ClassKind = ClassKind.JOINT, severity: Severity = Severity.HIGH, key: str = "k1",
) -> Classification:
    return Classification(
        kind=kind, severity=severity, rules_fired=("ctq-setpoint",), criteria_version="c-1",
        description="CTQ setpoint changed without approval", correlation_key=key,
        attack_techniques=("T0836",),
    )
