"""The drain reads the rows of the last appends from memory (`agent.spool.recent`): the same
rows, with the same ids and bytes, as SQLite would give, whatever else changes the queue
(another connection's requeue, a quarantine, an ack out of order, the bound on what is kept).
Real SQLite, no mocks."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agent.kafka.settings import TopicNames
from agent.spool import Row, Spool
from agent.spool import recent as recent_module
from agent.spool.recent import RecentRows
from tests.delivery.test_spool_watermark import seqs
from tests.support.events import numbered_events

TOPICS = TopicNames(suspect="s", authorized="a")


def from_file(spool: Spool, limit: int = 1000, after: int = 0) -> list[Row]:
    """What SQLite holds in the queue (a second connection, as `Spool.peek` would read it)."""
    with sqlite3.connect(spool.path) as db:
        (acked,) = db.execute("SELECT value FROM meta WHERE name = 'acked_upto'").fetchone()
        cur = db.execute(
            "SELECT id, topic, key, value FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (max(after, acked), limit))
        return [(int(i), str(t), bytes(k), bytes(v)) for i, t, k, v in cur]


@contextmanager
def reads_of_rows(spool: Spool) -> Iterator[list[str]]:
    """The statements that read queued rows' values on the spool's connection meanwhile."""
    seen: list[str] = []
    spool._db.set_trace_callback(
        lambda sql: seen.append(sql) if sql.startswith("SELECT id, topic, key, value") else None)
    try:
        yield seen
    finally:
        spool._db.set_trace_callback(None)


def test_the_rows_just_appended_are_read_from_memory_as_sqlite_holds_them(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    spool.append(numbered_events(150)[:100], ahead=[("uses", b"k", b"use-1")])
    spool.append(numbered_events(150)[100:])
    with reads_of_rows(spool) as reads:
        first = spool.peek(60)
        rest = spool.peek(1000, after=first[-1][0])
        assert first + rest == from_file(spool) and len(first + rest) == 151
        spool.ack([row[0] for row in first])
        assert spool.peek(1000) == rest == from_file(spool)
        assert spool.peek(10, after=rest[-1][0]) == []
    assert reads == []
    spool.close()


def test_rows_another_connection_requeues_are_read_from_the_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    spool.append(numbered_events(3))
    ids = [row[0] for row in spool.peek(3)]
    spool.quarantine(ids[1], "MessageSizeTooLargeError: too large")
    spool.append(numbered_events(2, start=3))
    cli = Spool(spool.path, topics=TOPICS)  # the spool CLI: `spool requeue`
    assert cli.requeue_quarantined() == 1
    cli.close()
    assert seqs(spool.peek(10)) == [1, 3, 4, 5, 2] and spool.peek(10) == from_file(spool)
    spool.append(numbered_events(1, start=5))
    assert seqs(spool.peek(10)) == [1, 3, 4, 5, 2, 6] and spool.peek(10) == from_file(spool)
    spool.close()


@pytest.mark.parametrize("change", ["quarantine", "ack out of order", "requeue"])
def test_a_removal_other_than_the_watermark_is_never_hidden_by_memory(
    tmp_path: Path, change: str
) -> None:
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    spool.append(numbered_events(5))
    ids = [row[0] for row in spool.peek(5)]
    if change == "quarantine":
        spool.quarantine(ids[2], "CorruptRecordException: bad")
        expected = [1, 2, 4, 5]
    elif change == "ack out of order":
        spool.ack([ids[1], ids[3]])
        expected = [1, 3, 5]
    else:
        spool.quarantine(ids[0], "CorruptRecordException: bad")
        spool.requeue_quarantined()
        expected = [2, 3, 4, 5, 1]
    assert seqs(spool.peek(10)) == expected and spool.peek(10) == from_file(spool)
    assert spool.peek(10, after=ids[0]) == from_file(spool, after=ids[0])
    spool.append(numbered_events(1, start=5))
    assert seqs(spool.peek(10)) == [*expected, 6] and spool.peek(10) == from_file(spool)
    spool.close()


def test_past_the_bound_the_drain_reads_the_file_until_it_reaches_the_newer_appends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recent_module, "MAX_ROWS", 25)
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    for i in range(0, 30, 10):  # 30 rows: over the bound, forgotten
        spool.append(numbered_events(10, start=i))
    spool.append(numbered_events(10, start=30))  # kept again from here
    with reads_of_rows(spool) as reads:
        assert seqs(spool.peek(100)) == list(range(1, 41)) and len(reads) == 1
        batch = spool.peek(30)
        spool.ack([row[0] for row in batch])
        assert spool.peek(100) == from_file(spool) and len(reads) == 2
    assert seqs(spool.peek(100)) == list(range(31, 41))
    spool.close()


def test_kept_rows_follow_on_or_replace_and_leave_with_the_watermark() -> None:
    kept = RecentRows()
    kept.add([(5, "t", b"k", b"v5"), (6, "t", b"k", b"v6")], 6)
    assert kept.after(4, 10, newest_id=6) == [(5, "t", b"k", b"v5"), (6, "t", b"k", b"v6")]
    assert kept.after(5, 1, newest_id=6) == [(6, "t", b"k", b"v6")]
    assert kept.after(3, 10, newest_id=6) is None  # row 4 may be queued: not kept
    assert kept.after(4, 10, newest_id=7) is None  # a row this spool did not write
    kept.add([(8, "t", b"k", b"v8")], 3)  # not following on: replaces
    assert kept.after(7, 10, newest_id=8) == [(8, "t", b"k", b"v8")]
    assert kept.after(5, 10, newest_id=8) is None
    kept.add([(9, "t", b"k", b"v9")], 3)
    kept.drop_upto(8)
    assert kept.after(8, 10, newest_id=9) == [(9, "t", b"k", b"v9")]
    kept.drop_upto(9)
    assert kept.after(9, 10, newest_id=9) is None


def test_a_drain_batch_leaves_by_the_watermark_counted_from_memory_as_the_file_counts(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    counts: list[str] = []
    spool._db.set_trace_callback(
        lambda sql: counts.append(sql) if "SUM(size)" in sql else None)
    for i in range(0, 300, 100):
        spool.append(numbered_events(100, start=i), ahead=[("uses", b"k", b"u")] if i else [])
        batch = spool.peek(60)
        spool.ack([row[0] for row in batch])
        assert spool.peek(1000) == from_file(spool)
    assert counts == [] and spool.acknowledged_rows() == 180
    depth, size = spool.depth(), spool.size_bytes()
    spool.close()
    spool = Spool(spool.path, topics=TOPICS)  # counted from the file
    assert (spool.depth(), spool.size_bytes(), spool.acknowledged_rows()) == (depth, size, 180)
    assert depth == 122 and spool.peek(1)[0][0] == 181
    spool.close()
