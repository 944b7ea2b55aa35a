"""`detectors.records.driver`: statements on the driver's own connection, inside the store's
transaction, with the driver's errors named as SQLAlchemy's would be."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from detectors.records import NotMigrated, RecordsError, RecordStore
from detectors.records.db import translated
from detectors.records.driver import fetch_all
from detectors.records.tables import processed_events


def _ids(store: RecordStore) -> tuple[str, str]:
    """The dialect's statement for processed event ids, and its placeholder."""
    placeholder = ":at" if store.database.dialect == "sqlite" else "%(at)s"
    return f"SELECT event_id FROM processed_events WHERE processed_at = {placeholder}", placeholder


def test_rows_come_back_as_tuples_in_the_same_transaction(store: RecordStore) -> None:
    sql, _ = _ids(store)
    with store.database.write() as conn:
        conn.execute(processed_events.insert(), [
            {"event_id": f"ev-{n}", "record_id": None, "processed_at": "t1"} for n in range(3)
        ])
        rows = fetch_all(conn, sql, {"at": "t1"})
    assert sorted(rows) == [("ev-0",), ("ev-1",), ("ev-2",)]


def test_a_missing_table_is_named_as_not_migrated(store: RecordStore) -> None:
    _, placeholder = _ids(store)
    with pytest.raises(NotMigrated, match="records database not migrated"), translated(), \
            store.database.write() as conn:
        fetch_all(conn, f"SELECT x FROM no_such_table WHERE x = {placeholder}", {"at": "t"})


def test_a_driver_error_rolls_the_transaction_back(store: RecordStore) -> None:
    with pytest.raises(RecordsError), translated(), store.database.write() as conn:
        conn.execute(processed_events.insert(),
                     {"event_id": "ev-x", "record_id": None, "processed_at": "t"})
        fetch_all(conn, "SELECT 1 FROM processed_events WHERE", {})  # a syntax error
    with store.database.read() as conn:
        assert conn.execute(select(processed_events.c.event_id)).all() == []
