"""The spool's write path per append: its file layout and what it keeps in memory (real SQLite)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from agent import spool_db
from agent.baseline import BaselineStore, encode_tags
from agent.kafka.settings import TopicNames
from agent.sources.base import Reading
from agent.spool import Spool
from agent.spool_db import PAGE_SIZE
from tests.support.events import numbered_events

TOPICS = TopicNames(suspect="s", authorized="a")


def page_size(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute("PRAGMA page_size").fetchone()[0])


def old_spool(path: Path) -> None:
    """A spool as an earlier version left it: 4 KB pages, WAL, rows acknowledged and not."""
    spool = Spool(path, topics=TOPICS)
    spool.append(numbered_events(5))
    spool.ack([row[0] for row in spool.peek(2)])
    spool.close()
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("PRAGMA page_size=4096")
        db.execute("VACUUM")
        db.execute("PRAGMA journal_mode=WAL")
    assert page_size(path) == 4096


def test_a_new_spool_has_large_pages_and_a_small_old_one_is_rebuilt_with_them(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "new.db", topics=TOPICS)
    spool.append(numbered_events(3))
    spool.close()
    assert page_size(tmp_path / "new.db") == PAGE_SIZE > 4096

    old = tmp_path / "old.db"
    old_spool(old)
    spool = Spool(old, topics=TOPICS)
    assert page_size(old) == PAGE_SIZE
    assert spool.depth() == 3 and spool.last_seq() == 5 and spool.acknowledged_rows() == 2
    assert seqs(spool) == [3, 4, 5]
    spool.append(numbered_events(1, start=5))
    assert seqs(spool) == [3, 4, 5, 6]
    spool.close()


def test_an_old_spool_too_large_or_open_elsewhere_keeps_its_pages_and_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / "old.db"
    old_spool(old)
    with closing(sqlite3.connect(old)) as other:  # the CLI, say, has it open
        other.execute("SELECT COUNT(*) FROM events").fetchone()
        spool = Spool(old, topics=TOPICS)
        assert page_size(old) == 4096 and seqs(spool) == [3, 4, 5]
        spool.close()
    monkeypatch.setattr(spool_db, "REBUILD_MAX_BYTES", 0)
    spool = Spool(old, topics=TOPICS)
    spool.append(numbered_events(1, start=5))
    assert page_size(old) == 4096 and seqs(spool) == [3, 4, 5, 6]
    spool.close()


def seqs(spool: Spool) -> list[int]:
    return [orjson.loads(value)["seq"] for *_, value in spool.peek(100)]


def test_the_last_seq_outlives_every_removal_of_its_row_and_a_restart(tmp_path: Path) -> None:
    """An append writes no counter: the last seq is the largest stored, so whatever removes
    the row holding it for good must keep it (a seq handed out twice is a false gap alarm)."""
    path = tmp_path / "spool.db"
    spool = Spool(path, topics=TOPICS)
    spool.append(numbered_events(3))
    spool.ack([row[0] for row in spool.peek(10)])
    assert spool.compact() == 3  # every row gone, at once
    spool.close()

    spool = Spool(path, topics=TOPICS)
    assert spool.last_seq() == 3
    spool.append(numbered_events(3, start=3))
    assert seqs(spool) == [4, 5, 6]
    spool.ack([spool.peek(10)[-1][0]])  # not the oldest: deleted at once
    spool.close()

    spool = Spool(path, topics=TOPICS)
    assert spool.last_seq() == 6
    spool.append(numbered_events(1, start=6))
    newest = spool.peek(10)[-1][0]
    assert spool.quarantine(newest, "MessageSizeTooLarge") == 7
    spool.close()

    spool = Spool(path, topics=TOPICS)
    assert spool.last_seq() == 7
    spool.append(numbered_events(1, start=7))
    assert seqs(spool) == [4, 5, 8]
    spool.close()
    with closing(sqlite3.connect(path)) as db:  # where an earlier version reads it
        assert db.execute("SELECT value FROM meta WHERE name = 'last_seq'").fetchone() == (8,)


def test_the_per_tag_journal_of_an_earlier_version_replays_first_and_is_trimmed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spool.db"
    Spool(path, topics=TOPICS).close()
    with closing(sqlite3.connect(path)) as db, db:  # an earlier version's rows, one per tag
        db.executemany(
            "INSERT INTO baseline_journal (controller, tag, reading) VALUES (?, ?, ?)",
            [("opc", "a", '{"value": 1, "source_ts": null}'),
             ("opc", 'b"', '{"value": "x", "source_ts": "2026-11-30T12:00:00+00:00"}')],
        )
    spool = Spool(path, topics=TOPICS)
    spool.append(numbered_events(1), baseline=[("opc", encode_tags({"a": Reading(2.5)}))])
    store = BaselineStore(tmp_path / "baseline.json")
    assert store.replay(spool.baseline_journal()) == 3
    assert store.get("opc").tags == {
        "a": Reading(2.5), 'b"': Reading("x", datetime(2026, 11, 30, 12, tzinfo=UTC))}

    spool.trim_baseline_journal(spool.baseline_journal_head())
    assert spool.baseline_journal() == []
    spool.append(numbered_events(1, start=1), baseline=[("opc", encode_tags({"c": Reading(1)}))])
    head = spool.baseline_journal_head()
    spool.append(numbered_events(1, start=2), baseline=[("opc", encode_tags({"d": Reading(2)}))])
    spool.trim_baseline_journal(head)  # what came after the snapshot's mark stays
    assert spool.baseline_journal() == [("opc", encode_tags({"d": Reading(2)}))]
    spool.close()


def test_a_reader_that_closes_with_an_older_count_never_lowers_the_last_seq(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spool.db"
    agent = Spool(path, topics=TOPICS)
    reader = Spool(path, topics=TOPICS)  # the spool CLI, opened before these appends
    agent.append(numbered_events(4))
    agent.ack([row[0] for row in agent.peek(10)])
    agent.compact()  # no row holds the last seq any more
    reader.close()
    restarted = Spool(path, topics=TOPICS)  # as after a crash of the agent (no close)
    assert restarted.last_seq() == 4
    restarted.close()
    agent.close()


def wal_pages(path: Path) -> int:
    """Pages in the spool's WAL file."""
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size // (PAGE_SIZE + 24) if wal.exists() else 0


def test_deleting_acknowledged_rows_does_not_rewrite_the_pages_they_free(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path, topics=TOPICS)
    events = numbered_events(2000)
    for i in range(0, len(events), 100):
        spool.append(events[i : i + 100])
    spool.ack([row[0] for row in spool.peek(len(events))])
    with closing(sqlite3.connect(path)) as other:  # an empty WAL: count what compaction writes
        assert other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    assert wal_pages(path) == 0 and page_count(path) > 20
    assert spool.compact() == len(events)
    # A handful of pages (the table's root, the free list, meta), not every page it freed.
    assert 0 < wal_pages(path) <= 5 and spool.acknowledged_rows() == 0
    spool.append(numbered_events(1, start=len(events)))
    assert seqs(spool) == [len(events) + 1]
    spool.close()


def page_count(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute("PRAGMA page_count").fetchone()[0])
