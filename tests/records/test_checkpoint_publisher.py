"""The checkpoint publisher against the real embedded broker: checkpoints every N entries land
in the database and on ``otwatch.checkpoints``; when an attacker cuts the tail *and* deletes
the checkpoints that covered it from the database (so the database alone verifies), verify
against the topic, or against a file exported from it, still names the cut."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

from agent.kafka.settings import KafkaSettings
from detectors.checkpoint_publisher import CheckpointPublisher, read_topic
from detectors.config import CheckpointsSection, ClassifierConfig, ClassifierSection
from detectors.records import AddComment, RecordStore, open_store
from detectors.records.checkpoints import CheckpointSigner, generate_key, read_checkpoints
from detectors.records_cli import main
from simulators.broker import EmbeddedBroker
from tests.records.lifecycle_steps import at
from tests.records.people import QA, enrol
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event

pytestmark = pytest.mark.integration

TOPIC = "otwatch.checkpoints"


def _config(db: Path, key: Path, broker: EmbeddedBroker) -> ClassifierConfig:
    return ClassifierConfig(
        classifier=ClassifierSection(records_db=str(db)),
        kafka=KafkaSettings(bootstrap_servers=broker.bootstrap, enable_idempotence=False),
        checkpoints=CheckpointsSection(key_file=key, every_entries=2, check_interval_s=0.1),
    )


async def _publish_while(store: RecordStore, publisher: CheckpointPublisher) -> None:
    """Run the publisher while three comments are written after the first checkpoint."""
    stop = asyncio.Event()
    task = asyncio.create_task(publisher.run(stop))
    try:
        async with asyncio.timeout(60):
            while publisher.published < 1:
                await asyncio.sleep(0.1)
            for n in range(3):
                store.execute(AddComment(record_id="NC-2026-000001", reason=f"note {n}"),
                              actor=QA, now=at(1 + n))
            while publisher.published < 2:
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def test_checkpoints_reach_the_topic_and_catch_a_cut_the_database_hides(
    broker: EmbeddedBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    db, key = tmp_path / "records.db", tmp_path / "checkpoint.key"
    generate_key(key)
    with open_store(str(db)) as store:
        store.migrate()
        enrol(store, T0)
        store.record_events([(event(n), classified(key=f"k{n}")) for n in (1, 2)], now=T0)
        publisher = CheckpointPublisher(_config(db, key, broker),
                                        CheckpointSigner.from_file(key))
        asyncio.run(_publish_while(store, publisher))
        with store.database.read() as conn:
            stored = read_checkpoints(conn)
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
    on_topic = asyncio.run(read_topic(kafka, TOPIC))
    assert [c.seq for c in stored] == [2, 5] and on_topic == stored

    # The attacker cuts the three comments and the checkpoint that covered them.
    with sqlite3.connect(db) as conn:
        conn.executescript("DROP TRIGGER audit_trail_no_delete;"
                           "DELETE FROM audit_trail WHERE seq > 2;"
                           "DELETE FROM trail_checkpoints WHERE seq = 5;")
    base = ["--db", str(db), "verify", "--public-key", f"{key}.pub", "--checkpoint-every", "2"]
    capsys.readouterr()
    assert main(base) == 0, "the database alone no longer shows the cut (why a copy is kept)"
    assert "intact" in capsys.readouterr().out
    assert main([*base, "--checkpoints-from", "kafka", "--bootstrap", broker.bootstrap]) == 1
    out = capsys.readouterr().out
    if os.environ.get("SHOW_VERIFY"):  # the transcript for the note
        with capsys.disabled():
            print(f"\n$ otwatch-records verify --public-key K.pub --checkpoints-from kafka\n{out}")
    lines = out.splitlines()
    assert "checkpoint of entry 5 (topic otwatch.checkpoints" in lines[0]
    assert "the tail was cut" in lines[0]
    assert any("in topic otwatch.checkpoints but not in the database" in line
               for line in lines)

    exported = tmp_path / "checkpoints.jsonl"
    assert main(["--db", str(db), "checkpoints", "export", "--bootstrap", broker.bootstrap,
                 "--out", str(exported)]) == 0
    assert len(exported.read_text().splitlines()) == 2
    capsys.readouterr()
    assert main([*base, "--checkpoints-from", str(exported)]) == 1
    first = capsys.readouterr().out.splitlines()[0]
    assert f"checkpoint of entry 5 (file {exported}" in first and "the tail was cut" in first
