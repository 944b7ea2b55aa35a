"""`Bulk.run_tuples` writes every row as given, however many statements it takes (SQLite packs
many rows into each INSERT, under `SQLITE_MAX_VARIABLES`; PostgreSQL copies them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from detectors.records import RecordsError, RecordStore, open_store
from detectors.records.db import SQLITE_MAX_VARIABLES, Bulk, translated
from detectors.records.tables import processed_events

_COLUMNS = tuple(c.name for c in processed_events.columns)
_PER_STATEMENT = SQLITE_MAX_VARIABLES // len(_COLUMNS)


@pytest.mark.parametrize("count", [1, _PER_STATEMENT - 1, _PER_STATEMENT, 2 * _PER_STATEMENT + 7])
def test_every_row_lands_once_in_order_of_columns(store: RecordStore, count: int) -> None:
    rows = [(f"ev-{n:05d}", None if n % 3 else f"NC-2026-{n:06d}", f"2026-01-01T00:00:{n % 60:02d}")
            for n in range(count)]
    bulk = Bulk(processed_events.insert())
    with store.database.write() as conn:
        bulk.run_tuples(conn, _COLUMNS, rows)
    with store.database.read() as conn:
        stored = conn.execute(select(*processed_events.columns)
                              .order_by(processed_events.c.event_id)).all()
    assert [tuple(row) for row in stored] == rows


def test_a_bad_row_among_many_writes_none(store: RecordStore) -> None:
    rows = [(f"ev-{n:05d}", None, "2026-01-01T00:00:00") for n in range(_PER_STATEMENT + 3)]
    rows[-1] = (rows[-1][0], None, None)  # processed_at is NOT NULL
    bulk = Bulk(processed_events.insert())
    with pytest.raises(RecordsError), translated(), store.database.write() as conn:
        bulk.run_tuples(conn, _COLUMNS, rows)
    with store.database.read() as conn:
        assert conn.execute(select(processed_events.c.event_id)).all() == []


def test_rows_in_another_order_are_refused(tmp_path: Path) -> None:
    """SQLite only: PostgreSQL's COPY names the columns in the order given."""
    store = open_store(str(tmp_path / "records.db"))
    try:
        store.migrate()
        bulk = Bulk(processed_events.insert())
        with pytest.raises(ValueError, match="order"), store.database.write() as conn:
            bulk.run_tuples(conn, tuple(reversed(_COLUMNS)), [("a", "b", "c")])
    finally:
        store.close()
