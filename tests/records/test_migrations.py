"""The records migrations: the same versions on both dialects, and an existing database
(schema 1, with or without the table the containment publisher used to create itself)
migrates forward keeping what it holds."""

from __future__ import annotations

from datetime import timedelta

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
