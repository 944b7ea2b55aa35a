"""``otwatch-sim``: check, run with a scenario, ports file, start gate, clean stop on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from simulators.cli import main
from tests.simulators.conftest import PLANT_FILE, ROOT, SCENARIOS


def test_check_accepts_the_shipped_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--plant", str(PLANT_FILE), *map(str, SCENARIOS)]) == 0
    assert "ok:" in capsys.readouterr().out


def test_bad_plant_exits_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "plant.yaml"
    bad.write_text("site: s\nlines: [{id: l, controllers: [], extra: 1}]\n")
    assert main(["run", "--plant", str(bad), "--duration", "1"]) == 2
    assert f"{bad}: lines[0].extra" in capsys.readouterr().err


def test_help_describes_the_run_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for option in (
        "--scenario",
        "--labels-out",
        "--approvals-out",
        "--ports-file",
        "--hold",
        "--start-when-exists",
        "--speed",
        "--duration",
    ):
        assert option in out


@pytest.mark.integration
def test_run_plays_the_demo_and_writes_everything(tmp_path: Path) -> None:
    labels, approvals, ports = tmp_path / "l.jsonl", tmp_path / "a.yaml", tmp_path / "p.json"
    code = main(
        [
            "run",
            "--plant",
            str(PLANT_FILE),
            "--scenario",
            str(ROOT / "config/scenarios/demo.yaml"),
            "--labels-out",
            str(labels),
            "--approvals-out",
            str(approvals),
            "--ports-file",
            str(ports),
            "--free-ports",
            "--speed",
            "20",
            "--no-process",
        ]
    )
    assert code == 0
    assert [json.loads(x)["expected_verdict"] for x in labels.read_text().splitlines()] == [
        "authorized",
        "unapproved",
    ]
    assert yaml.safe_load(approvals.read_text())["approvals"][0]["id"] == "CR-demo-1"
    assert set(json.loads(ports.read_text())) == {"press-01", "press-02", "gateway-01", "oven-01"}


def _wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path,
                what: str) -> None:
    """Poll ``ready``; fail naming ``what`` (with the simulator's log) if the simulator exits
    first, or after a bound that only ends a hung test (a loaded machine starts it slowly)."""
    deadline = time.monotonic() + 300
    while not ready():
        assert proc.poll() is None, f"the simulator exited before {what}: {log.read_text()}"
        assert time.monotonic() < deadline, f"no {what}: {log.read_text()}"
        time.sleep(0.05)


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.integration
def test_waits_for_the_start_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    ports, gate, labels = tmp_path / "p.json", tmp_path / "ready", tmp_path / "l.jsonl"
    log = tmp_path / "sim.log"
    with log.open("wb") as err:  # the child has its own copy of the descriptor
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "simulators.cli",
                "run",
                "--plant",
                str(PLANT_FILE),
                "--free-ports",
                "--port",
                "press-01=0",
                "--ports-file",
                str(ports),
                "--scenario",
                str(ROOT / "config/scenarios/demo.yaml"),
                "--start-when-exists",
                str(gate),
                "--labels-out",
                str(labels),
                "--speed",
                "50",
                "--hold",
                "120",
            ],
            cwd=ROOT,
            stderr=err,
        )
    try:
        _wait_until(ports.exists, proc, log, "ports file")  # written once every PLC listens
        assert not labels.exists()  # the scenario waits for the gate file
        gate.touch()
        _wait_until(lambda: _lines(labels) == 2, proc, log, "label for both actions")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=300) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.integration
def test_run_without_a_scenario_serves_for_the_duration(tmp_path: Path) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text(
        "site: s\nlines: [{id: l, controllers: [{id: p, protocol: modbus, port: 0, tags: "
        "[{name: a, address: 0, type: int16, initial: 3}]}]}]\n"
    )
    ports = tmp_path / "ports.json"
    args = ["run", "--plant", str(plant), "--duration", "0.3", "--ports-file", str(ports)]
    assert main(args) == 0
    assert set(json.loads(ports.read_text())) == {"p"}
