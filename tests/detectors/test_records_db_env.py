"""The records database's DSN from the environment or a file, never from argv."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from detectors.records_db_env import RecordsDbEnvError, records_db_from_env


def test_the_variable_then_the_file_then_nothing(tmp_path: Path) -> None:
    dsn = tmp_path / "records-db.dsn"
    dsn.write_text("postgresql://otwatch:s3cret@db/otwatch\n")
    assert records_db_from_env({"OTWATCH_RECORDS_DB": "a.db",
                                "OTWATCH_RECORDS_DB_FILE": str(dsn)}) == "a.db"
    assert records_db_from_env({"OTWATCH_RECORDS_DB_FILE": str(dsn)}) == \
        "postgresql://otwatch:s3cret@db/otwatch"
    assert records_db_from_env({}) is None


@pytest.mark.parametrize("content", [None, "", "\n"])
def test_a_missing_or_empty_file_names_the_variable_and_the_fix(
    tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "dsn"
    if content is not None:
        path.write_text(content)
    with pytest.raises(RecordsDbEnvError, match=r"OTWATCH_RECORDS_DB_FILE=.*fix: "):
        records_db_from_env({"OTWATCH_RECORDS_DB_FILE": str(path)})


def test_the_classifier_takes_the_environment_over_its_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from detectors.cli import _apply_overrides
    from detectors.config import ClassifierConfig

    dsn = tmp_path / "dsn"
    dsn.write_text("postgresql://otwatch:s3cret@db/otwatch")
    monkeypatch.delenv("OTWATCH_RECORDS_DB", raising=False)
    monkeypatch.setenv("OTWATCH_RECORDS_DB_FILE", str(dsn))
    args = argparse.Namespace(records_db=None, bootstrap_servers=None)
    config = _apply_overrides(ClassifierConfig(), args)
    assert config.classifier.records_db == "postgresql://otwatch:s3cret@db/otwatch"
    args.records_db = "other.db"
    assert _apply_overrides(ClassifierConfig(), args).classifier.records_db == "other.db"


def test_containment_reads_the_database_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from detectors.containment_cli import main

    missing = tmp_path / "none.db"
    monkeypatch.setenv("OTWATCH_RECORDS_DB", str(missing))
    assert main(["--bootstrap-servers", "127.0.0.1:1"]) == 2
    assert str(missing) in capsys.readouterr().err
    monkeypatch.delenv("OTWATCH_RECORDS_DB")
    monkeypatch.delenv("OTWATCH_RECORDS_DB_FILE", raising=False)
    assert main(["--bootstrap-servers", "127.0.0.1:1"]) == 2
    assert "OTWATCH_RECORDS_DB_FILE" in capsys.readouterr().err
