"""The containment publisher started before the classifier migrated the records database.

Services start in any order: the publisher waits for the schema (bounded) instead of exiting,
then publishes what the records hold. Real subprocess, real SQLite file, real broker.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import BinaryIO

import pytest

from detectors.containment import TrailCursor
from detectors.records import open_store
from simulators.broker import EmbeddedBroker
from tests.containment.test_publisher import TOPIC, actions, hold, open_record, read, set_holds
from tests.records.people import enrol
from tests.support.events import WORKDAY

pytestmark = pytest.mark.e2e

WAITING = "waiting up to"


def unmigrated_db(tmp_path: Path) -> str:
    """A records database file as the classifier leaves it between creating and migrating it."""
    db = tmp_path / "records.db"
    store = open_store(str(db))
    assert store.schema_version() == 0
    store.close()
    assert db.is_file()
    return str(db)


def log_file(path: Path) -> BinaryIO:
    return open(path, "wb")


async def wait_for_text(log: Path, text: str, proc: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(20):
        while text not in log.read_text(encoding="utf-8", errors="replace"):
            assert proc.returncode is None, log.read_text(encoding="utf-8", errors="replace")
            await asyncio.sleep(0.1)


async def test_the_publisher_waits_for_the_migration_then_publishes(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    db = unmigrated_db(tmp_path)
    log = tmp_path / "containment.log"
    with log_file(log) as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "detectors.containment", "--db", db, "--bootstrap-servers",
            broker.bootstrap, "--interval-s", "0.2", "--wait-for-schema-s", "120",
            stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        await wait_for_text(log, WAITING, proc)
        await asyncio.sleep(1.5)  # a few more looks at the unmigrated database
        assert proc.returncode is None, log.read_text()

        store = open_store(db)  # now the classifier migrates it and a record gets a lot hold
        try:
            store.migrate()
            enrol(store, WORKDAY)  # the people who work records
            record_id = open_record(store)
            set_holds(store, record_id, [hold("LOT-7")], minutes=2)
            assert actions(await read(broker, 1)) == [("LOT-7", "hold")]
            head = store.trail()[-1].seq
        finally:
            store.close()
        await wait_for_text(log, "the records database is ready", proc)
    finally:
        if proc.returncode is None:
            os.kill(proc.pid, signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 15)
    assert proc.returncode == 0, log.read_text()
    assert log.read_text().count(WAITING) == 1, "one line per wait, then quiet"
    cursor = TrailCursor.open(db, TOPIC)
    try:
        assert cursor.load() == head
    finally:
        cursor.close()


def run_publisher(db: str, wait_s: int) -> subprocess.CompletedProcess[str]:
    """The publisher on ``db`` with nothing listening on the broker address, to its exit."""
    return subprocess.run(
        [sys.executable, "-m", "detectors.containment", "--db", db,
         "--bootstrap-servers", "127.0.0.1:1", "--wait-for-schema-s", str(wait_s)],
        capture_output=True, text=True, timeout=30,
    )


def test_the_wait_is_bounded(tmp_path: Path) -> None:
    done = run_publisher(unmigrated_db(tmp_path), 1)
    assert done.returncode == 2, done.stderr
    assert WAITING in done.stderr
    assert "schema version 0" in done.stderr and "waited 1 s" in done.stderr


def test_no_wait_refuses_an_unmigrated_database_at_once(tmp_path: Path) -> None:
    done = run_publisher(unmigrated_db(tmp_path), 0)
    assert done.returncode == 2, done.stderr
    assert WAITING not in done.stderr and "schema version 0" in done.stderr
