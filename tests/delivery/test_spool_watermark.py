"""Acknowledged rows leave the queue by a watermark and are deleted later (`Spool.ack`,
`Spool.compact`): what the broker has never comes back, what it has not is never dropped, across
a crash at every step (a reopened spool is what a restarted agent sees), and a full disk still
takes new events once acknowledged rows can be deleted. Real SQLite, no mocks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.kafka.settings import TopicNames
from agent.spool import Row, Spool, SpoolFull
from tests.support.events import numbered_events

TOPICS = TopicNames(suspect="s", authorized="a")


def stored_rows(path: Path) -> int:
    """Rows physically in the events table, acknowledged or not (a second connection)."""
    with sqlite3.connect(path) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM events").fetchone()
    return int(count)


def reopen(spool: Spool) -> Spool:
    """What an agent restarted after a crash at this point sees (nothing else survives)."""
    spool.close()
    return Spool(spool.path, topics=spool.topics)


def seqs(rows: list[Row]) -> list[int]:
    import orjson

    return [int(orjson.loads(value)["seq"]) for *_, value in rows]


def test_rows_sent_but_never_acknowledged_come_back_with_the_same_bytes(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    spool.append(numbered_events(10))
    sent = spool.peek(4)  # handed to the broker; the crash comes before any acknowledgement
    spool = reopen(spool)
    assert spool.peek(4) == sent and spool.depth() == 10
    spool.close()


def test_acknowledged_rows_never_come_back_after_a_crash_before_they_are_deleted(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    spool.append(numbered_events(10), now=1000.0)
    spool.append(numbered_events(5, start=10), now=1010.0)
    spool.ack([row[0] for row in spool.peek(10)])
    assert stored_rows(spool.path) == 15  # still on disk: removed by the watermark only
    spool = reopen(spool)
    assert spool.depth() == 5 and seqs(spool.peek(100)) == [11, 12, 13, 14, 15]
    assert spool.oldest_age_s(now=1030.0) == 20.0  # the oldest row left, not an acknowledged one
    assert spool.size_bytes() == sum(len(k) + len(v) for _i, _t, k, v in spool.peek(100))
    assert spool.quarantine(spool.peek(1)[0][0] - 1, "x: y") is None  # an acked row: not there
    assert [ev.seq for ev in spool.append(numbered_events(1, start=15))] == [16]
    spool.close()


def test_compaction_deletes_only_acknowledged_rows_in_chunks(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    spool.append(numbered_events(30))
    spool.ack([row[0] for row in spool.peek(25)])
    assert spool.acknowledged_rows() == 25
    assert spool.compact(limit=10) == 10 and stored_rows(spool.path) == 20
    assert spool.compact(limit=10) == 10 and spool.compact(limit=10) == 5
    assert spool.compact() == 0 and spool.acknowledged_rows() == 0
    assert stored_rows(spool.path) == 5 and seqs(spool.peek(100)) == [26, 27, 28, 29, 30]
    spool = reopen(spool)  # a crash after compaction: the same five rows
    assert spool.depth() == 5 and seqs(spool.peek(100)) == [26, 27, 28, 29, 30]
    spool.close()


def test_with_every_row_acknowledged_compaction_empties_the_table_and_ids_go_on(
    tmp_path: Path,
) -> None:
    """The agent's usual case (the drain keeps up): all acknowledged rows go at once, by
    SQLite's truncate; later rows get new ids above the watermark, never reused ones."""
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    spool.append(numbered_events(300))
    acked = spool.peek(1000)
    spool.ack([row[0] for row in acked])
    assert spool.compact(limit=10) == 300
    assert stored_rows(spool.path) == 0 and spool.acknowledged_rows() == 0
    assert spool.compact() == 0
    spool.append(numbered_events(3, start=300))
    assert spool.peek(10)[0][0] == acked[-1][0] + 1
    assert seqs(spool.peek(10)) == [301, 302, 303] and spool.depth() == 3
    spool = reopen(spool)  # a crash after it: the same three rows, nothing acknowledged left
    assert seqs(spool.peek(10)) == [301, 302, 303]
    assert (spool.depth(), spool.acknowledged_rows()) == (3, 0)
    assert spool.size_bytes() == sum(len(k) + len(v) for _i, _t, k, v in spool.peek(10))
    spool.close()


def test_acks_that_are_not_the_oldest_rows_delete_exactly_those(tmp_path: Path) -> None:
    """A gap (a row still waiting before them, or a hole in the ids) must not be covered by a
    watermark: those rows are deleted one by one instead, and the waiting row stays."""
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    spool.append(numbered_events(6))
    ids = [row[0] for row in spool.peek(6)]
    spool.ack([ids[2], ids[3]])  # the first two still wait
    assert seqs(spool.peek(10)) == [1, 2, 5, 6] and spool.depth() == 4
    spool.ack([ids[0], ids[4]])  # oldest first, but not consecutive: ids[1] is between
    assert seqs(spool.peek(10)) == [2, 6]
    spool.ack([ids[1], ids[5]])
    assert spool.depth() == 0 and spool.peek(10) == []
    spool = reopen(spool)
    assert spool.depth() == 0 and spool.peek(10) == [] and spool.last_seq() == 6
    spool.close()


def test_an_ack_of_rows_already_gone_changes_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    spool.append(numbered_events(4))
    ids = [row[0] for row in spool.peek(4)]
    spool.ack(ids[:2])
    spool.ack(ids[:2])  # a resend acknowledged twice
    assert spool.depth() == 2 and seqs(spool.peek(10)) == [3, 4]
    spool.close()


def test_a_full_disk_takes_new_events_once_acknowledged_rows_are_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    spool.append(numbered_events(300))
    spool.ack([row[0] for row in spool.peek(300)])
    (pages,) = spool._db.execute("PRAGMA page_count").fetchone()
    spool._db.execute(f"PRAGMA max_page_count={pages}")  # no page more than now
    stored = spool.append(numbered_events(200, start=300))  # room made by deleting the acked
    assert [ev.seq for ev in stored] == list(range(301, 501))
    assert spool.depth() == 200 and stored_rows(spool.path) == 200
    with pytest.raises(SpoolFull) as info:  # nothing acknowledged left to delete: refused
        spool.append(numbered_events(400, start=500))
    assert info.value.reason == "disk" and spool.depth() == 200 and spool.last_seq() == 500
    spool.close()


def test_acknowledged_bytes_past_a_quarter_of_the_bound_are_deleted_at_once(
    tmp_path: Path,
) -> None:
    """The file is not left to grow during a long drain: past max_bytes / 4 of acknowledged
    rows, an ack deletes them itself."""
    spool = Spool(tmp_path / "spool.db", topics=TOPICS, max_bytes=40_000)
    spool.append(numbered_events(20))
    size = spool.size_bytes() // 20
    small = max(1, 10_000 // size - 1)  # under a quarter of the bound: kept for later
    spool.ack([row[0] for row in spool.peek(small)])
    assert stored_rows(spool.path) == 20
    spool.ack([row[0] for row in spool.peek(5)])  # now past it
    assert stored_rows(spool.path) == 20 - small - 5 == spool.depth()
    spool.close()
