"""Revision 0009 (``records.security_ticket`` nullable) on a database that holds records, on
SQLite and PostgreSQL: the upgrade keeps every row and the trail verifies; the downgrade puts
NOT NULL back while every record has a ticket and refuses, changing nothing, once a
quality-only record has none."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command

from detectors.classification import ClassKind
from detectors.records import RecordsError, RecordStore, open_store
from detectors.records.checkpoints import Interval
from detectors.records.db import Dialect
from detectors.records.migrate import alembic_config
from detectors.records.tamper import verify_store
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event


def _alembic(store: RecordStore, schema: str | None, action: str, revision: str) -> None:
    db = store.database
    with db.write() as conn:
        if db.dialect is Dialect.POSTGRESQL and schema:
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        getattr(command, action)(alembic_config(conn), revision)


def _quality_record(store: RecordStore, n: int) -> str:
    (outcome,) = store.record_events(
        [(event(n, controller=f"mixer-{n}"), classified(ClassKind.QUALITY_ONLY, key=f"q{n}"))],
        now=T0 + timedelta(minutes=n))
    return outcome.record_id or ""


def test_0009_upgrades_records_and_downgrades_only_while_every_record_has_a_ticket(
    store_target: tuple[str, str | None],
) -> None:
    target, schema = store_target
    with open_store(target, schema=schema) as store:
        _alembic(store, schema, "upgrade", "0008")
        assert store.schema_version() == 8
        store.record_events([(event(1), classified(key="a")),
                             (event(2, controller="press-02"), classified(key="b"))], now=T0)
        before = store.list_records()
        with pytest.raises(RecordsError):  # revision 0008: every record needs a ticket
            _quality_record(store, 3)

        assert store.migrate() == [9, 10]
        assert store.list_records() == before
        assert verify_store(store.database, key=None, every=Interval()).problems == []

        _alembic(store, schema, "downgrade", "0008")  # no record without a ticket yet
        assert store.schema_version() == 8
        with pytest.raises(RecordsError):
            _quality_record(store, 3)
        assert store.migrate() == [9, 10]

        rid = _quality_record(store, 3)
        assert store.get_record(rid).security_ticket is None
        with pytest.raises(RuntimeError, match=r"refused: 1 record\(s\) have no security"):
            _alembic(store, schema, "downgrade", "0008")
        assert store.schema_version() == 10  # refused as a whole: still at the head
        assert store.get_record(rid).security_ticket is None
        assert verify_store(store.database, key=None, every=Interval()).problems == []
