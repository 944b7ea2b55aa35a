"""The spool's write path per append: its file layout and what it keeps in memory (real SQLite)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent.kafka.settings import TopicNames
from agent.spool import Spool
from agent.spool_db import PAGE_SIZE
from tests.support.events import numbered_events

TOPICS = TopicNames(suspect="s", authorized="a")


def page_size(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA page_size").fetchone()[0])


def test_a_new_spool_has_large_pages_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "new.db", topics=TOPICS)
    spool.append(numbered_events(3))
    spool.close()
    assert page_size(tmp_path / "new.db") == PAGE_SIZE > 4096

    old = tmp_path / "old.db"
    with sqlite3.connect(old) as db:  # a spool an earlier version created: 4 KB pages, WAL
        db.execute("PRAGMA page_size=4096")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x)")
    spool = Spool(old, topics=TOPICS)
    spool.append(numbered_events(2))
    spool.close()
    spool = Spool(old, topics=TOPICS)
    assert page_size(old) == 4096
    assert spool.depth() == 2 and spool.last_seq() == 2
    spool.close()
