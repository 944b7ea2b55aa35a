"""The records migrations: the same versions on both dialects, and an existing database
(schema 1, with or without the table the containment publisher used to create itself)
migrates forward keeping what it holds."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from detectors.containment import CURSOR_SCHEMA_VERSION, TrailCursor
from detectors.records import db as records_db
from detectors.records import open_store
from detectors.records.db import Dialect, migrations
from tests.records.conftest import T0, classified, event

NOW = T0 + timedelta(minutes=1)
# The table exactly as `TrailCursor` created it before schema 2.
AD_HOC_CURSOR = ("CREATE TABLE IF NOT EXISTS containment_cursor (topic TEXT PRIMARY KEY, "
                 "seq BIGINT NOT NULL, updated_at TEXT NOT NULL)")


def test_both_dialects_have_the_same_migrations() -> None:
    def names(dialect: Dialect) -> list[tuple[int, str]]:
        return [(v, name.split(".")[0]) for v, name, _ in migrations(dialect)]

    assert names(Dialect.SQLITE) == names(Dialect.POSTGRESQL)
    assert [v for v, _ in names(Dialect.SQLITE)] == list(range(1, CURSOR_SCHEMA_VERSION + 1))


def migrate_to_schema_1(target: str, schema: str | None, monkeypatch: pytest.MonkeyPatch,
                        *, ad_hoc_cursor: bool) -> None:
    """A database as the release before schema 2 left it: one record, maybe a cursor row."""
    everything = records_db.migrations
    with monkeypatch.context() as patch:
        patch.setattr(records_db, "migrations", lambda d: everything(d)[:1])
        with open_store(target, schema=schema) as store:
            assert store.migrate() == [1]
            store.record_events([(event(1), classified())], now=NOW)
    if ad_hoc_cursor:
        db = records_db.connect(target, schema=schema)
        try:
            with db.write():
                db.execute(AD_HOC_CURSOR)
                db.execute("INSERT INTO containment_cursor (topic, seq, updated_at) "
                           "VALUES (?, ?, ?)", ("otwatch.containment", 12, NOW.isoformat()))
        finally:
            db.close()


@pytest.mark.parametrize("ad_hoc_cursor", [False, True], ids=["no-cursor", "ad-hoc-cursor"])
def test_a_schema_1_database_migrates_forward_and_keeps_its_rows(
    store_target: tuple[str, str | None], monkeypatch: pytest.MonkeyPatch, ad_hoc_cursor: bool,
) -> None:
    target, schema = store_target
    migrate_to_schema_1(target, schema, monkeypatch, ad_hoc_cursor=ad_hoc_cursor)
    with open_store(target, schema=schema) as store:
        assert store.migrate() == [2]
        assert store.schema_version() == CURSOR_SCHEMA_VERSION
        assert [r.controller for r in store.list_records()] == ["press-01"]
    cursor = TrailCursor.open(target, "otwatch.containment", schema=schema)
    try:
        assert cursor.load() == (12 if ad_hoc_cursor else 0)
        cursor.save(20, NOW)
        assert cursor.load() == 20
    finally:
        cursor.close()


def test_the_cursor_refuses_a_database_before_schema_2(
    store_target: tuple[str, str | None], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from detectors.records import StoreUnavailable

    target, schema = store_target
    migrate_to_schema_1(target, schema, monkeypatch, ad_hoc_cursor=False)
    with pytest.raises(StoreUnavailable, match="schema version 1; the containment cursor needs 2"):
        TrailCursor.open(target, "otwatch.containment", schema=schema)


OPEN_AND_MIGRATE = """
import sys, time
from detectors.records import open_store
start = float(sys.argv[2])
while time.time() < start:  # every process opens the new file at the same moment
    pass
with open_store(sys.argv[1]) as store:
    store.migrate()
"""


def test_processes_started_together_on_a_new_sqlite_file_all_open_it(tmp_path: Path) -> None:
    """Two classifiers (or a classifier and the records UI) started together on a fresh
    database: switching it to WAL made all but one fail with "database is locked"."""
    for attempt in range(3):
        target = tmp_path / f"records-{attempt}.db"
        start = time.time() + 2.0  # after every interpreter has imported
        procs = [
            subprocess.Popen([sys.executable, "-c", OPEN_AND_MIGRATE, str(target), str(start)],
                             stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        try:
            errors = [p.communicate(timeout=60)[1] for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(timeout=5)
        assert [p.returncode for p in procs] == [0, 0, 0], errors
        with open_store(str(target)) as store:
            assert store.schema_version() == CURSOR_SCHEMA_VERSION
