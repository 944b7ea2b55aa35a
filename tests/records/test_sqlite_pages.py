"""A new SQLite records database takes 16 KiB pages; an existing one keeps its own and works."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from detectors.records import open_store
from detectors.records.db import SQLITE_PAGE_SIZE
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event


def _page_size(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])


def test_a_new_database_has_the_larger_pages(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    with open_store(str(path)) as store:
        store.migrate()
        (out,) = store.record_events([(event(1), classified())], now=T0 + timedelta(minutes=1))
        assert out.created
    assert SQLITE_PAGE_SIZE == 16_384 and _page_size(path) == SQLITE_PAGE_SIZE


def test_an_existing_database_keeps_its_page_size(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    with sqlite3.connect(path) as conn:  # made by an older release: 4 KiB pages, WAL
        conn.execute("PRAGMA page_size=4096")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE before_us (x INTEGER)")
    with open_store(str(path)) as store:
        store.migrate()
        outs = store.record_events([(event(n), classified()) for n in range(3)],
                                   now=T0 + timedelta(minutes=1))
        assert [o.created for o in outs] == [True, False, False]
        assert len(store.get_record(outs[0].record_id or "").evidence) == 3
    assert _page_size(path) == 4096
