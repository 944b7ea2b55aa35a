"""The spool on its own: durable seq, topic routing, FIFO, bounds and a full disk (real SQLite)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import orjson
import pytest
from prometheus_client import REGISTRY

from agent.contract import EventSigner, SignatureStatus, SuspectChange, Verdict, verify_event
from agent.contract.merkle import MAX_TREE_SIZE
from agent.kafka.settings import TopicNames
from agent.spool import Spool, SpoolError, SpoolFull
from tests.support.events import numbered_event, numbered_events

TOPICS = TopicNames(suspect="s", authorized="a")


def refused(reason: str) -> float:
    return REGISTRY.get_sample_value("otwatch_agent_spool_refused_total", {"reason": reason}) or 0.0


def test_seq_is_assigned_in_order_and_survives_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    first = spool.append(numbered_events(3))
    spool.ack([row[0] for row in spool.peek(10)])
    spool.close()
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    second = spool.append(numbered_events(2, start=3))
    assert [ev.seq for ev in first + second] == [1, 2, 3, 4, 5]
    assert spool.last_seq() == 5
    assert spool.depth() == 2
    spool.close()


def test_rows_route_by_verdict_keyed_by_controller_oldest_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    stored = spool.append(
        [numbered_event(0, verdict=Verdict.AUTHORIZED), numbered_event(1, controller="oven-02")]
    )
    rows = spool.peek(10)
    assert [(topic, key) for _id, topic, key, _v in rows] == [
        ("a", b"plant-1/press-01"),
        ("s", b"plant-1/oven-02"),
    ]
    assert [value for *_, value in rows] == [ev.to_json() for ev in stored]
    spool.ack([rows[0][0]])
    assert [row[0] for row in spool.peek(10)] == [rows[1][0]]
    spool.close()


def test_oldest_age_follows_the_oldest_unacknowledged_event(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    assert spool.oldest_age_s(now=1000.0) is None
    spool.append(numbered_events(1), now=1000.0)
    spool.append(numbered_events(1), now=1010.0)
    assert spool.oldest_age_s(now=1030.0) == 30.0
    spool.ack([spool.peek(1)[0][0]])
    assert spool.oldest_age_s(now=1030.0) == 20.0
    spool.close()


def test_full_by_count_refuses_the_whole_append_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "spool.db", topics=TOPICS, max_events=10)
    spool.append(numbered_events(8))
    before = refused("events")
    for _ in range(3):
        with pytest.raises(SpoolFull) as info:
            spool.append(numbered_events(3))
        assert info.value.reason == "events"
    assert "max_events=10" in str(info.value)
    assert refused("events") - before == 9
    assert spool.depth() == 8 and spool.last_seq() == 8  # nothing written, no seq consumed
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    spool.ack([row[0] for row in spool.peek(5)])
    assert [ev.seq for ev in spool.append(numbered_events(3))] == [9, 10, 11]
    spool.close()


def test_full_by_bytes_and_by_age(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "a.db", topics=TOPICS, max_bytes=2_000)
    spool.append(numbered_events(5))
    with pytest.raises(SpoolFull, match="max_bytes=2000") as info:
        spool.append(numbered_events(1))
    assert info.value.reason == "bytes"
    spool.close()
    spool = Spool(tmp_path / "b.db", topics=TOPICS, max_age_s=60)
    spool.append(numbered_events(1), now=1000.0)
    spool.append(numbered_events(1), now=1050.0)
    with pytest.raises(SpoolFull, match="max_age_s=60") as info:
        spool.append(numbered_events(1), now=1061.0)
    assert info.value.reason == "age"
    spool.close()


def test_full_disk_is_a_clear_counted_refusal(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    # SQLite's page limit gives the very error a full filesystem gives: SQLITE_FULL
    (pages,) = spool._db.execute("PRAGMA page_count").fetchone()
    spool._db.execute(f"PRAGMA max_page_count={pages + 1}")
    before = refused("disk")
    with pytest.raises(SpoolFull, match=r"disk under the spool .* is full") as info:
        spool.append(numbered_events(500))
    assert info.value.reason == "disk"
    assert refused("disk") - before == 500
    assert spool.depth() == 0 and spool.last_seq() == 0
    spool.close()


def test_an_append_is_signed_once_per_tree_and_each_row_verifies_alone(tmp_path: Path) -> None:
    signer = EventSigner.generate()
    keys = {signer.key_id: signer.public_key_b64}
    spool = Spool(tmp_path / "spool.db", topics=TOPICS, signer=signer)
    spool.append(numbered_events(1))
    stored = spool.append(numbered_events(MAX_TREE_SIZE + 2, start=1))
    rows = spool.peek(1000)
    signed = [SuspectChange.model_validate_json(value) for *_, value in rows[1:]]
    assert [ev.model_copy(update={"signature": None}) for ev in signed] == stored
    algs = [orjson.loads(value)["signature"]["alg"] for *_, value in rows]
    assert algs == ["ed25519"] + ["ed25519-merkle"] * (MAX_TREE_SIZE + 2)
    roots = {orjson.loads(value)["signature"]["value"] for *_, value in rows[1:]}
    assert len(roots) == 2  # 258 events: a tree of 256 and one of 2
    assert all(verify_event(value, keys).status is SignatureStatus.VALID for *_, value in rows)
    assert [orjson.loads(value)["seq"] for *_, value in rows] == list(range(1, MAX_TREE_SIZE + 4))
    spool.close()


def test_a_refused_signed_append_leaves_nothing_and_the_retry_signs_afresh(
    tmp_path: Path,
) -> None:
    signer = EventSigner.generate()
    keys = {signer.key_id: signer.public_key_b64}
    spool = Spool(tmp_path / "spool.db", topics=TOPICS, signer=signer)
    (pages,) = spool._db.execute("PRAGMA page_count").fetchone()
    spool._db.execute(f"PRAGMA max_page_count={pages + 1}")
    events = numbered_events(300)
    with pytest.raises(SpoolFull):
        spool.append(events)
    assert spool.depth() == 0 and spool.last_seq() == 0 and spool.peek(10) == []
    spool._db.execute("PRAGMA max_page_count=1073741823")
    stored = spool.append(events[:5])
    assert [ev.seq for ev in stored] == [1, 2, 3, 4, 5]
    assert all(verify_event(value, keys).ok for *_, value in spool.peek(10))
    spool.close()


def test_unusable_path_names_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(SpoolError, match=str(blocker / "spool.db")):
        Spool(blocker / "spool.db", topics=TOPICS)


def synchronous(spool: Spool) -> int:
    (level,) = spool._db.execute("PRAGMA synchronous").fetchone()
    return int(level)


def test_appends_stay_fully_synced_around_an_ack_that_succeeds_or_fails(tmp_path: Path) -> None:
    """An ack commits without its own fsync (a lost removal is a resend); the appends around it
    must still be durable on return: synchronous=FULL (2) again after every ack."""
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    spool.append(numbered_events(3))
    assert synchronous(spool) == 2
    spool.ack([spool.peek(1)[0][0]])
    assert synchronous(spool) == 2 and spool.depth() == 2
    spool._db.execute("PRAGMA busy_timeout=10")
    other = sqlite3.connect(tmp_path / "spool.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock: the ack cannot commit
    try:
        with pytest.raises(SpoolError, match="cannot remove acknowledged rows"):
            spool.ack([row[0] for row in spool.peek(10)])
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert synchronous(spool) == 2 and not spool._db.in_transaction
    assert len(spool.peek(10)) == 2  # nothing removed
    spool.ack([row[0] for row in spool.peek(10)])
    assert spool.depth() == 0 and synchronous(spool) == 2
    spool.close()


def test_an_append_without_numbered_copies_stores_the_same_rows(tmp_path: Path) -> None:
    """The agent's path (``numbered=False``): the rows, seqs, routing, bytes and signatures
    (Ed25519 is deterministic) are those of the path that returns the numbered events."""
    signer = EventSigner.generate()
    events = numbered_events(MAX_TREE_SIZE + 3, controllers=3)
    events[4] = numbered_event(4, verdict=Verdict.AUTHORIZED)
    rows = []
    for name, numbered in (("a.db", True), ("b.db", False)):
        spool = Spool(tmp_path / name, topics=TOPICS, signer=signer)
        spool.append(events[:1], numbered=numbered)
        returned = spool.append(events[1:], numbered=numbered, baseline=[("c", '{"t": {}}')])
        assert len(returned) == (len(events) - 1 if numbered else 0)
        assert spool.depth() == len(events) and spool.last_seq() == len(events)
        rows.append([row[1:] for row in spool.peek(1000)])
        assert spool.baseline_journal() == [("c", '{"t": {}}')]
        spool.close()
    assert rows[0] == rows[1]
    assert [orjson.loads(value)["seq"] for *_, value in rows[1]] == list(range(1, len(events) + 1))
    assert rows[1][4][0] == "a"


def test_a_refused_append_without_numbered_copies_leaves_nothing(tmp_path: Path) -> None:
    signer = EventSigner.generate()
    spool = Spool(tmp_path / "spool.db", topics=TOPICS, signer=signer)
    spool.append(numbered_events(2), numbered=False)
    (pages,) = spool._db.execute("PRAGMA page_count").fetchone()
    spool._db.execute(f"PRAGMA max_page_count={pages + 1}")
    with pytest.raises(SpoolFull):
        spool.append(numbered_events(300, start=2), numbered=False,
                     baseline=[("c", '{"t": {}}')] * 300)
    assert spool.depth() == 2 and spool.last_seq() == 2 and spool.baseline_journal() == []
    spool._db.execute("PRAGMA max_page_count=1073741823")
    spool.append(numbered_events(1, start=2), numbered=False)
    assert [orjson.loads(v)["seq"] for *_, v in spool.peek(10)] == [1, 2, 3]
    spool.close()
