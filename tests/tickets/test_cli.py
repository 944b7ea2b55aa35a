"""``otwatch-tickets``: bad input refused with a clear message (no secret in it), and a real
run as its own process against the loopback fakes, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from detectors.records import open_store
from detectors.tickets_cli import build_parser, main
from simulators.broker import free_port
from tests.records.people import enrol
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event
from tests.tickets.fake_tools import THEHIVE_KEY, ToolServer
from tests.tickets.test_outbox import add_service_users

pytestmark = pytest.mark.integration


@pytest.fixture
def db(tmp_path: Path) -> str:
    target = str(tmp_path / "records.db")
    with open_store(target) as store:
        store.migrate()
        enrol(store, T0)
        add_service_users(store)
        store.record_events([(event(1), classified())], now=T0)
    return target


def write_config(tmp_path: Path, url: str, **thehive: object) -> Path:
    path = tmp_path / "tickets.yaml"
    path.write_text(yaml.safe_dump({
        "records_url": "https://records.plant.example", "interval_s": 0.1, "metrics_port": 0,
        "backoff": {"initial_s": 0.1, "max_s": 0.5},
        "connectors": {"thehive": {"url": url, "api_key": {"env": "T_THEHIVE_KEY"},
                                   **thehive}}}))
    return path


def test_nothing_to_do_and_a_missing_database_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--db", str(tmp_path / "records.db")]) == 2
    assert "nothing to do" in capsys.readouterr().err
    assert main(["--db", str(tmp_path / "nope.db"), "--config", "x.yaml"]) == 2
    assert "no records database" in capsys.readouterr().err


def test_a_bad_config_names_the_file_and_key(
    tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, "ftp://thehive", colour="blue")
    assert main(["--db", db, "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "connectors.thehive" in err


def test_a_missing_secret_or_service_user_is_refused_without_printing_secrets(
    tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:9")
    monkeypatch.delenv("T_THEHIVE_KEY", raising=False)
    assert main(["--db", db, "--config", str(path)]) == 2
    assert "connectors.thehive.api_key: the environment variable T_THEHIVE_KEY is empty" in \
        capsys.readouterr().err
    monkeypatch.setenv("T_THEHIVE_KEY", "s3cr3t-value-never-printed")
    path = write_config(tmp_path, "http://127.0.0.1:9", service_user="svc-nobody")
    assert main(["--db", db, "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "'svc-nobody', which is missing" in err and "--role integration" in err
    assert "s3cr3t" not in err


async def test_a_run_opens_the_ticket_serves_its_metrics_and_stops_on_sigterm(
    tmp_path: Path, db: str, tool_server: ToolServer
) -> None:
    port = free_port()
    path = write_config(tmp_path, tool_server.url)
    path.write_text(path.read_text().replace("metrics_port: 0", f"metrics_port: {port}"))
    env = {**os.environ, "T_THEHIVE_KEY": THEHIVE_KEY}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "detectors.tickets_cli", "--db", db, "--config", str(path),
        env=env, stderr=subprocess.PIPE)
    try:
        async with asyncio.timeout(30):
            while "NC-2026-000001" not in tool_server.tools.alerts or not linked(db):
                await asyncio.sleep(0.1)
        metrics = await asyncio.to_thread(scrape, port)
        assert 'otwatch_tickets_delivered_total{op="open",system="thehive"} 1.0' in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        _, raw = await asyncio.wait_for(proc.communicate(), 20)
    err = raw.decode()
    assert proc.returncode == 0, err
    assert THEHIVE_KEY not in err


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def linked(db: str) -> bool:
    with open_store(db) as store:
        return any(r["remote_id"] for r in store.linked_tickets("NC-2026-000001"))


def test_the_shipped_deployments_run_a_command_line_that_parses() -> None:
    deploy = Path(__file__).parents[2] / "deploy"
    compose = yaml.safe_load((deploy / "compose.yaml").read_text())["services"]["tickets"]
    kube = yaml.safe_load((deploy / "kubernetes" / "tickets-deployment.yaml").read_text())
    container, = kube["spec"]["template"]["spec"]["containers"]
    unit = next(line for line in (deploy / "systemd" / "otwatch-tickets.service").read_text()
                .splitlines() if line.startswith("ExecStart="))
    for command in (compose["command"], container["command"] + container["args"],
                    unit.removeprefix("ExecStart=").split()):
        assert Path(command[0]).name == "otwatch-tickets"
        args = build_parser().parse_args(command[1:])
        # the DSN carries the database password: from the environment, never on argv
        assert args.db is None and args.bootstrap_servers and args.enable_idempotence
