"""Web fixtures: a real SQLite records store in tmp_path, served by the app on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.contract import SuspectChange
from detectors.classification import Classification, ClassKind, Severity
from detectors.records import open_store
from detectors.web import create_app

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def suspect(n: int, *, tag: str = "ZoneTemp", minutes: float = 0) -> SuspectChange:
    at = T0 + timedelta(minutes=minutes)
    return SuspectChange.model_validate({
        "event_id": f"ev-{n}", "seq": n, "agent_id": "agent-1", "site": "plant-1",
        "line": "line-a",
        "controller": {"id": "press-01", "protocol": "opcua", "endpoint": "opc.tcp://x:4840",
                       "validated": True},
        "tag": {"name": tag, "address": f"ns=2;s={tag}", "kind": "setpoint",
                "critical_to_quality": True, "unit": "degC"},
        "old_value": 200.0, "new_value": 215.0,
        "occurred_at": at - timedelta(seconds=30), "detected_at": at,
        "change_kind": "setpoint_change", "verdict": "unapproved",
        "context": {"lot": "LOT-7", "recipe": "<R-12>"},
    })


def classified(key: str, description: str = "CTQ setpoint changed without approval",
               ) -> Classification:
    return Classification(
        kind=ClassKind.JOINT, severity=Severity.HIGH, rules_fired=("ctq-setpoint",),
        criteria_version="c-1", description=description, correlation_key=key,
        attack_techniques=("T0836",),
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Two records: NC-2026-000001 (older, with a <script> description) and NC-2026-000002."""
    path = tmp_path / "records.db"
    with open_store(str(path)) as store:
        store.migrate()
        store.record_events(
            [
                (suspect(1), classified("k1", "<script>alert(1)</script> changed")),
                (suspect(2, tag="Pressure", minutes=3), classified("k2")),
            ],
            now=T0 + timedelta(minutes=5),
        )
    return path


async def serve(target: str) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(target), host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def client(db_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    running = await serve(str(db_path))
    yield running
    await running.close()
