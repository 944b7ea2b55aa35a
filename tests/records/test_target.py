"""One database-target parser and one redaction for every tool."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.records import DatabaseTarget, RecordsError, redact
from detectors.records.target import sqlite_path


@pytest.mark.parametrize(("target", "path"), [
    ("records.db", "records.db"),
    (".demo/records.db", ".demo/records.db"),
    ("/var/lib/otwatch/records.db", "/var/lib/otwatch/records.db"),
    ("sqlite:///var/lib/otwatch/records.db", "/var/lib/otwatch/records.db"),
])
def test_sqlite_targets(target: str, path: str) -> None:
    parsed = DatabaseTarget.parse(target)
    assert parsed.is_sqlite and parsed.sqlite_path == Path(path) == sqlite_path(target)
    assert parsed.url.drivername == "sqlite+pysqlite" and parsed.redacted == path


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_postgresql_targets_use_psycopg_and_hide_the_password(scheme: str) -> None:
    dsn = f"{scheme}://otwatch:s3cr%40t@db.plant:5433/records?sslmode=require"
    parsed = DatabaseTarget.parse(dsn, schema="plant_1")
    assert not parsed.is_sqlite and parsed.sqlite_path is None and sqlite_path(dsn) is None
    url = parsed.url
    assert (url.drivername, url.username, url.password, url.host, url.port, url.database) == (
        "postgresql+psycopg", "otwatch", "s3cr@t", "db.plant", 5433, "records")
    assert url.query == {"sslmode": "require"} and parsed.schema == "plant_1"
    assert "s3cr" not in parsed.redacted and "otwatch:***@db.plant:5433" in parsed.redacted
    assert "s3cr" not in redact(dsn) and "otwatch:***@db.plant" in redact(dsn)


def test_redact_leaves_what_has_no_password() -> None:
    assert redact("records.db") == "records.db"
    assert redact("postgresql://postgres@127.0.0.1/test") == "postgresql://postgres@127.0.0.1/test"


@pytest.mark.parametrize(("target", "schema", "problem"), [
    ("records.db", "plant", "PostgreSQL only"),
    ("postgresql://u@h/db", "Plant-1", "lower-case letters"),
    ("postgresql://u@h/db", "x; DROP TABLE records", "lower-case letters"),
    ("mysql://u:pw@h/db", None, "unknown database target"),
])
def test_bad_targets_are_refused_with_the_fix(
    target: str, schema: str | None, problem: str,
) -> None:
    with pytest.raises(RecordsError, match=problem) as info:
        DatabaseTarget.parse(target, schema=schema)
    assert "pw" not in str(info.value)
