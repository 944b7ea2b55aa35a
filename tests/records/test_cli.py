"""`otwatch-records`: list/show/verify/transition/update/kpis/export against a real database."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from detectors.records import RecordStore, State
from detectors.records_cli import main
from tests.records.lifecycle_steps import at, drive, prepare_plan
from tests.records.people import PASSWORD
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event

Cap = pytest.CaptureFixture[str]


CHEAP_CONFIG = "identity:\n  argon2: {time_cost: 1, memory_cost: 8, parallelism: 1}\n"


@pytest.fixture
def argv_db(store: RecordStore, store_target: tuple[str, str | None], tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``--db`` (and ``--schema``) for the store, holding two records, and ``--config`` with
    a cheap password hash; every password prompt answers the test people's password."""
    store.record_events([(event(1, approval=True), classified(key="a")),
                         (event(2, controller="press-02", tag="Speed"), classified(key="b"))],
                        now=T0)
    target, schema = store_target
    config = tmp_path / "records-ui.yaml"
    config.write_text(CHEAP_CONFIG)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": PASSWORD)
    monkeypatch.delenv("OTWATCH_TOKEN", raising=False)
    return ["--db", target, *(["--schema", schema] if schema else []), "--config", str(config)]


def test_list_table_and_json(argv_db: list[str], capsys: Cap) -> None:
    assert main([*argv_db, "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "CLASSIFICATION", "SEVERITY", "STATE", "TICKET",
                                "CONTROLLER/TAG", "DETECTED"]
    assert lines[1].split()[:6] == ["NC-2026-000001", "joint", "high", "detected",
                                    "SEC-2026-000001", "press-01/ZoneTemp"]
    assert lines[1].index("press-01") == lines[0].index("CONTROLLER/TAG")  # aligned
    assert main([*argv_db, "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["id"] for d in data] == ["NC-2026-000001", "NC-2026-000002"]
    assert {"id", "classification", "state", "security_ticket", "controller", "tag"} <= set(data[0])


def test_show(argv_db: list[str], capsys: Cap) -> None:
    assert main([*argv_db, "show", "NC-2026-000002", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tag"] == "Speed"
    assert main([*argv_db, "show", "NC-2026-000001"]) == 0
    out = capsys.readouterr().out
    assert "ev-1" in out and "sha256=" in out and "trail:" in out
    assert "  ev-1  press-01/ZoneTemp  setpoint_change  unapproved  joint  " in out
    assert main([*argv_db, "show", "NC-2026-000077"]) == 1
    assert "NC-2026-000077" in capsys.readouterr().err


def test_transition_update_and_verify(argv_db: list[str], capsys: Cap,
                                      store: RecordStore) -> None:
    rid = "NC-2026-000001"
    qa = [*argv_db, "--user", "qa.lee"]
    assert main([*qa, "transition", rid, "triage", "--reason", "triaged"]) == 0
    assert "triage by qa.lee" in capsys.readouterr().out
    assert main([*qa, "transition", rid, "closed", "--reason", "done"]) == 1
    assert "'triage'" in capsys.readouterr().err
    assert main([*qa, "update", rid, "log.owner", '"jdoe"', "--reason", "owner named"]) == 0
    assert main([*qa, "update", rid, "log.owner", "jdoe", "--reason", "x"]) == 2
    assert [e.actor for e in store.trail(rid)][-2:] == ["qa.lee", "qa.lee"]
    assert main([*argv_db, "verify"]) == 0
    assert "intact" in capsys.readouterr().out


def test_there_is_no_actor_option_and_a_write_signs_in(
    argv_db: list[str], capsys: Cap, monkeypatch: pytest.MonkeyPatch, store: RecordStore,
) -> None:
    rid = "NC-2026-000001"
    with pytest.raises(SystemExit):
        main([*argv_db, "transition", rid, "triage", "--actor", "jdoe", "--reason", "r"])
    assert "--actor" in capsys.readouterr().err
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "wrong")
    assert main([*argv_db, "--user", "qa.lee", "transition", rid, "triage",
                 "--reason", "r"]) == 1
    assert "refused" in capsys.readouterr().err
    assert main([*argv_db, "--user", "op.smith", "comment", rid, "LOT-7 ran hot"]) == 1
    assert store.get_record(rid).state is State.DETECTED


def test_a_signature_where_none_is_needed_exits_2_and_stores_nothing(
    argv_db: list[str], capsys: Cap, store: RecordStore,
) -> None:
    rid = "NC-2026-000001"
    before = store.trail(rid)
    assert main([*argv_db, "--user", "qa.lee", "transition", rid, "triage", "--reason", "r",
                 "--sign", "quality", "--meaning", "ok"]) == 2
    assert "needs no signature" in capsys.readouterr().err
    assert main([*argv_db, "--user", "qa.lee", "sign", rid, "--as", "quality",
                 "--meaning", "ok"]) == 2
    assert "no signature is needed" in capsys.readouterr().err
    assert main([*argv_db, "--user", "qa.lee", "transition", rid, "triage", "--reason", "r",
                 "--sign", "quality"]) == 2
    assert store.trail(rid) == before and store.get_record(rid).signatures == []


def test_signed_transition_from_cli(store: RecordStore, argv_db: list[str], capsys: Cap) -> None:
    rid = "NC-2026-000001"
    drive(store, rid, State.ACTION_PLAN)
    prepare_plan(store, rid, at(9))
    assert main([*argv_db, "--user", "qa.lee", "sign", rid, "--as", "quality",
                 "--meaning", "plan approved"]) == 0
    assert main([*argv_db, "--user", "qa.lee", "sign", rid, "--as", "security",
                 "--meaning", "plan approved"]) == 2
    assert "does not hold the security role" in capsys.readouterr().err
    assert main([*argv_db, "--user", "soc.kim", "transition", rid, "implementation",
                 "--reason", "plan approved", "--sign", "security",
                 "--meaning", "plan approved"]) == 0
    record = store.get_record(rid)
    assert record.state is State.IMPLEMENTATION
    assert [(s.printed_name, s.user_id, s.role.value) for s in record.signatures] == [
        ("Quinn Lee", "qa.lee", "quality"), ("Sam Kim", "soc.kim", "security")]


def test_a_token_signs_the_cli_in_and_a_signature_still_asks_the_password(
    store: RecordStore, argv_db: list[str], tmp_path: Path, capsys: Cap,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from detectors.identity import create_token

    rid = "NC-2026-000001"
    with store.database.write() as conn:
        _, token = create_token(conn, "qa.lee", "cli", now=datetime.now(UTC), days=1, by="t")
    path = tmp_path / "token"
    path.write_text(token + "\n")
    asked: list[str] = []

    def getpass(prompt: str = "") -> str:
        asked.append(prompt)
        return PASSWORD

    monkeypatch.setattr("getpass.getpass", getpass)
    assert main([*argv_db, "--token-file", str(path), "comment", rid, "seen"]) == 0
    assert asked == []
    monkeypatch.setenv("OTWATCH_TOKEN", token)
    assert main([*argv_db, "comment", rid, "seen again"]) == 0
    drive(store, rid, State.ACTION_PLAN)
    assert main([*argv_db, "sign", rid, "--as", "quality", "--meaning", "plan ok"]) == 0
    assert asked == ["Password for qa.lee (to sign): "]
    assert [e.actor for e in store.trail(rid) if e.field == "comment"] == ["qa.lee", "qa.lee"]
    monkeypatch.setenv("OTWATCH_TOKEN", token[:-3] + "xyz")
    assert main([*argv_db, "comment", rid, "x"]) == 1
    assert "API token refused: unknown token" in capsys.readouterr().err


def test_kpis(argv_db: list[str], capsys: Cap) -> None:
    assert main([*argv_db, "kpis", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == 2
    assert main([*argv_db, "kpis"]) == 0
    assert "mean_time_to_detect_s" in capsys.readouterr().out


def test_export_formats(argv_db: list[str], tmp_path: Path, capsys: Cap) -> None:
    rid = "NC-2026-000001"
    assert main([*argv_db, "export", rid, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["record"]["id"] == rid and doc["trail"][0]["field"] == "record"
    assert main([*argv_db, "export", rid, "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert ["record", "security_ticket", "SEC-2026-000001"] in rows
    assert any(r[:1] == ["evidence[0]"] and r[1] == "sha256" for r in rows)
    out = tmp_path / "r.html"
    assert main([*argv_db, "export", rid, "--format", "html", "-o", str(out)]) == 0
    html = out.read_text()
    assert "<h2>Audit trail</h2>" in html and "Electronic signatures" in html
    assert "@media print" in html and rid in html


def test_missing_sqlite_file_is_an_error_and_not_created(
    tmp_path: Path, capsys: Cap, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope.db"
    assert main(["--db", str(missing), "list"]) == 2
    assert "does not exist" in capsys.readouterr().err and not missing.exists()
    monkeypatch.setenv("OTWATCH_RECORDS_DB", str(missing))
    assert main(["list"]) == 2 and not missing.exists()
    monkeypatch.delenv("OTWATCH_RECORDS_DB")
    monkeypatch.chdir(tmp_path)
    assert main(["list"]) == 2
    assert ".demo/records.db" in capsys.readouterr().err
    assert not (tmp_path / ".demo").exists()


def test_env_database_and_empty_schema(
    tmp_path: Path, capsys: Cap, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    monkeypatch.setenv("OTWATCH_RECORDS_DB", str(empty))
    assert main(["list"]) == 2
    assert "migrate" in capsys.readouterr().err
    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["list"]) == 0
    assert "(no records)" in capsys.readouterr().out


def test_help_lists_commands(capsys: Cap) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("list", "show", "verify", "transition", "sign", "comment", "users",
                    "tokens", "kpis", "export"):
        assert command in out


@pytest.mark.integration
def test_serve_starts_the_records_service_on_the_default_database(tmp_path: Path) -> None:
    """``otwatch-records serve`` without --db serves the database every records command uses
    by default (here ``$OTWATCH_RECORDS_DB``), until SIGTERM (exit 0)."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    db = tmp_path / "records.db"
    db.touch()
    env = {**os.environ, "OTWATCH_RECORDS_DB": str(db)}
    assert subprocess.run([sys.executable, "-m", "detectors.records_cli", "migrate"], env=env,
                          capture_output=True, timeout=60, check=False).returncode == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    service = subprocess.Popen(
        [sys.executable, "-m", "detectors.records_cli", "--log-format", "json", "serve",
         "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert service.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        service.send_signal(signal.SIGTERM)
        _, err = service.communicate(timeout=30)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
    assert service.returncode == 0
    started = json.loads(err.splitlines()[0])
    assert started["logger"] == "detectors.web" and str(db) in started["message"]
