"""`otwatch-records`: list/show/verify/transition/update/kpis/export against a real database."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from detectors.records import RecordStore, State
from detectors.records_cli import main
from tests.records.conftest import T0, classified, event
from tests.records.lifecycle_steps import at, drive

Cap = pytest.CaptureFixture[str]


@pytest.fixture
def argv_db(store: RecordStore, store_target: tuple[str, str | None]) -> list[str]:
    """``--db`` (and ``--schema``) for the store, holding two records."""
    store.record_events([(event(1, approval=True), classified(key="a")),
                         (event(2, controller="press-02", tag="Speed"), classified(key="b"))],
                        now=T0)
    target, schema = store_target
    return ["--db", target, *(["--schema", schema] if schema else [])]


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
    assert main([*argv_db, "show", "NC-2026-000077"]) == 1
    assert "NC-2026-000077" in capsys.readouterr().err


def test_transition_update_and_verify(argv_db: list[str], capsys: Cap) -> None:
    rid = "NC-2026-000001"
    assert main([*argv_db, "transition", rid, "triage", "--actor", "jdoe", "--role", "quality",
                 "--reason", "triaged"]) == 0
    assert main([*argv_db, "transition", rid, "closed", "--actor", "jdoe", "--role", "quality",
                 "--reason", "done"]) == 1
    assert "'triage'" in capsys.readouterr().err
    assert main([*argv_db, "update", rid, "log.owner", '"jdoe"', "--actor", "jdoe",
                 "--reason", "owner named"]) == 0
    assert main([*argv_db, "update", rid, "log.owner", "jdoe", "--actor", "jdoe",
                 "--reason", "x"]) == 2
    assert main([*argv_db, "transition", rid, "containment", "--actor", "j", "--role", "quality",
                 "--reason", "r", "--sign", "only-a-name"]) == 2
    assert main([*argv_db, "verify"]) == 0
    assert "intact" in capsys.readouterr().out


def test_signed_transition_from_cli(store: RecordStore, argv_db: list[str]) -> None:
    rid = "NC-2026-000001"
    drive(store, rid, State.ACTION_PLAN)
    store.update_field(rid, "log.success_criteria", "30 days clean", actor="q", reason="r",
                       now=at(9))
    store.update_field(rid, "capa_actions", [{
        "id": "A1", "description": "d", "owner": "o", "domain": "both",
        "original_due": "2026-04-01", "current_due": "2026-04-01"}],
        actor="q", reason="r", now=at(9))
    assert main([*argv_db, "transition", rid, "implementation", "--actor", "jdoe", "--role",
                 "quality", "--reason", "plan approved",
                 "--sign", "Jane Doe|quality|plan approved",
                 "--sign", "Sam Roe|security|plan approved"]) == 0
    record = store.get_record(rid)
    assert record.state is State.IMPLEMENTATION
    assert [s.printed_name for s in record.signatures] == ["Jane Doe", "Sam Roe"]


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
    for command in ("list", "show", "verify", "transition", "kpis", "export"):
        assert command in out
