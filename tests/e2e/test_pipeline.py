"""End to end: simulated plant → agent → real broker → classifier → records in SQLite.

Every part runs as its own process on free loopback ports, started and stopped (by PID)
through the demo's own harness, so this test also proves what `make demo` does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from detectors.records import open_store
from simulators.demo import CONFIG, Pipeline, print_approved_changes, start
from tests.support.pipeline import demo_pipeline, records, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    with demo_pipeline(tmp_path) as running:
        yield running


def labels(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_demo_scenario_opens_one_joint_record(
    pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start(pipeline, CONFIG / "scenarios" / "demo.yaml", tmp_path, with_ui=False)
    banner = capsys.readouterr().out
    watched = [c["id"] for c in yaml.safe_load((tmp_path / "agent.yaml").read_text())[
        "controllers"]]
    assert f"watching {len(watched)} controllers ({', '.join(watched)};" in banner
    wait_until(lambda: len(labels(tmp_path / "labels.jsonl")) == 2, 60, "the scenario",
               pipeline.check_alive)
    db = tmp_path / "records.db"
    wait_until(lambda: records(db), 60, "a master record", pipeline.check_alive)
    # The approved change travels the same path, earlier; give any wrong record time to show.
    time.sleep(3)
    opened = records(db)
    assert [(r.classification, r.controller, r.tag) for r in opened] == [
        ("joint", "oven-01", "temperature_sp")
    ]
    record = opened[0]
    assert record.id.startswith("NC-") and record.security_ticket.startswith("SEC-")
    store = open_store(str(db))
    try:
        full = store.get_record(record.id)
    finally:
        store.close()
    assert [(e.old_value, e.new_value) for e in full.evidence] == [(200.0, 230.0)]
    # What quality and security see: the records CLI, database from OTWATCH_RECORDS_DB.
    listed = subprocess.run(
        [sys.executable, "-m", "detectors.records_cli", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "OTWATCH_RECORDS_DB": str(db)},
    )
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert {
        k: row[k] for k in ("id", "classification", "security_ticket", "controller", "tag")
    } == {
        "id": record.id,
        "classification": "joint",
        "security_ticket": record.security_ticket,
        "controller": "oven-01",
        "tag": "temperature_sp",
    }
    assert row["state"] == "detected"
    assert full.ticket.record_id == record.id  # linked both ways
    agent_log = (tmp_path / "agent.log").read_text()
    assert "authorized press-01/temperature_sp setpoint_change: 180.0 -> 185.0" in agent_log
    # The demo names the approved change it saw, and no process logged an ERROR (the
    # scenario's approvals file exists, empty, before the agent starts).
    print_approved_changes(tmp_path / "agent.log", set())
    assert ("APPROVED CHANGE press-01/temperature_sp setpoint_change: 180.0 -> 185.0"
            in capsys.readouterr().out)
    for log in tmp_path.glob("*.log"):
        errors = [line for line in log.read_text().splitlines() if " ERROR " in line]
        assert not errors, f"{log.name}: {errors}"
    assert "unapproved oven-01/temperature_sp setpoint_change: 200.0 -> 230.0" in agent_log
