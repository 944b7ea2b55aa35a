"""The publisher against the real embedded broker and a real SQLite records store."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.kafka.settings import KafkaSettings
from detectors.classification import Classification, ClassKind, Severity
from detectors.containment import ContainmentPublisher, TrailCursor
from detectors.records import (
    LotHold,
    PlaceHold,
    RecordStore,
    ReleaseHold,
    StoreUnavailable,
    open_store,
)
from simulators.broker import EmbeddedBroker, free_port
from tests.delivery.kafka_read import Received, read_topics
from tests.records.lifecycle_steps import assess
from tests.records.people import QA, enrol
from tests.support.events import WORKDAY, make_event

TOPIC = "otwatch.containment"
pytestmark = pytest.mark.e2e


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "records.db")


@pytest.fixture
def store(db: str) -> Iterator[RecordStore]:
    opened = open_store(db)
    opened.migrate()
    enrol(opened, WORKDAY)
    yield opened
    opened.close()


def open_record(store: RecordStore) -> str:
    cls = Classification(kind=ClassKind.JOINT, severity=Severity.HIGH,
                         rules_fired=("ctq-setpoint",), criteria_version="c-1",
                         description="CTQ setpoint changed without approval",
                         correlation_key="oven-01/temperature_sp")
    event = make_event(context={"lot": "LOT-7"})
    (outcome,) = store.record_events([(event, cls)], now=WORKDAY)
    assert outcome.record_id is not None
    assess(store, outcome.record_id, WORKDAY)  # what a lot hold needs first (lifecycle.GUARDS)
    for state in ("triage", "containment"):
        store.transition(outcome.record_id, state, actor=QA, reason=f"to {state}",
                         now=WORKDAY)
    return outcome.record_id


def set_holds(store: RecordStore, record_id: str, holds: list[LotHold], minutes: int) -> None:
    """Bring the record's lot holds to ``holds`` through the hold and release steps, in order
    (one trail entry each), at ``minutes`` past the start of the workday."""
    now = WORKDAY + timedelta(minutes=minutes)
    current = {h.lot_id: h for h in store.get_record(record_id).containment.lot_holds}
    reason = "lots made under the unapproved setpoint"
    for want in holds:
        have = current.get(want.lot_id)
        if have is None:
            store.execute(PlaceHold(record_id=record_id, lot_id=want.lot_id,
                                    held_at=want.held_at, reason=reason), actor=QA, now=now)
        if want.released_at is not None and (have is None or have.released_at is None):
            store.execute(ReleaseHold(record_id=record_id, lot_id=want.lot_id, reason=reason),
                          actor=QA, now=now)


def hold(lot: str, released_min: int | None = None) -> LotHold:
    """A lot held a minute into the workday, released at ``released_min`` (by whoever runs
    `set_holds`)."""
    released = None if released_min is None else WORKDAY + timedelta(minutes=released_min)
    return LotHold(lot_id=lot, held_at=WORKDAY + timedelta(minutes=1), released_at=released)


def publisher(store: RecordStore, db: str, broker: EmbeddedBroker,
              cursor: TrailCursor | None = None) -> ContainmentPublisher:
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, enable_idempotence=False,
                          topic_partitions=2, request_timeout_ms=5_000)
    return ContainmentPublisher(store, cursor or TrailCursor.open(db, TOPIC), kafka,
                                interval_s=0.1)


async def read(broker: EmbeddedBroker, count: int) -> list[dict[str, Any]]:
    # 30 s: the command's test starts a Python process that creates the topic; at load 12-17
    # that took longer than the 10 s this had.
    got: list[Received] = await read_topics(broker.bootstrap, [TOPIC], until_count=count,
                                            limit_s=30)
    assert len(got) == count, [r.value for r in got]
    return [r.value for r in sorted(got, key=lambda r: (r.partition, r.offset))]


def actions(values: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(v["lot"], v["action"]) for v in values]


async def test_hold_release_and_restart(
    store: RecordStore, db: str, broker: EmbeddedBroker
) -> None:
    record_id = open_record(store)
    first = publisher(store, db, broker)
    await first.start()
    try:
        set_holds(store, record_id, [hold("LOT-7"), hold("LOT-8")], minutes=2)
        placed = await read(broker, 2)
        assert actions(placed) == [("LOT-7", "hold"), ("LOT-8", "hold")]
        record = store.get_record(record_id)
        seq = store.trail()[-2].seq  # LOT-7's hold; LOT-8's is the last entry
        assert placed[0] == {
            "schema": "otwatch.containment/1", "message_id": f"{seq}/LOT-7/hold",
            "trail_seq": seq, "record_id": record_id, "ticket_id": record.security_ticket,
            "controller": "oven-01", "lot": "LOT-7", "action": "hold",
            "reason": "lots made under the unapproved setpoint", "actor": "qa.lee",
            "released_by": None, "time": "2026-11-23T10:01:00.000000+00:00",
            "recorded_at": "2026-11-23T10:02:00.000000+00:00",
        }
        set_holds(store, record_id, [hold("LOT-7", released_min=30), hold("LOT-8")], minutes=30)
        released = (await read(broker, 3))[2]
        assert (released["lot"], released["action"], released["released_by"]) == (
            "LOT-7", "release", "qa.lee")
    finally:
        await first.stop()
    head = store.trail()[-1].seq
    assert first.status.cursor == head and TrailCursor.open(db, TOPIC).load() == head

    # Released while the publisher was down: published after the restart, nothing before it again.
    set_holds(store, record_id, [hold("LOT-7", 30), hold("LOT-8", 40)], minutes=40)
    second = publisher(store, db, broker)
    await second.start()
    try:
        await asyncio.sleep(0.5)
        set_holds(store, record_id, [hold("LOT-7", 30), hold("LOT-8", 40), hold("LOT-9")], 50)
        # One record, one key, one partition: a re-sent message would arrive before LOT-9.
        after = await read(broker, 5)
    finally:
        await second.stop()
    assert actions(after) == [("LOT-7", "hold"), ("LOT-8", "hold"), ("LOT-7", "release"),
                              ("LOT-8", "release"), ("LOT-9", "hold")]
    assert len({v["message_id"] for v in after}) == 5
    assert sorted(v["trail_seq"] for v in after) == [v["trail_seq"] for v in after]


class CrashingCursor(TrailCursor):
    """The process dies after the broker acknowledged, before the cursor was written."""

    crashes = 1

    def save(self, seq: int, now: Any) -> None:
        if self.crashes:
            self.crashes -= 1
            raise StoreUnavailable("database went away (injected)")
        super().save(seq, now)


async def test_a_lost_cursor_write_resends_never_loses(
    store: RecordStore, db: str, broker: EmbeddedBroker
) -> None:
    record_id = open_record(store)
    set_holds(store, record_id, [hold("LOT-7")], minutes=2)
    cursor = CrashingCursor.open(db, TOPIC)
    running = publisher(store, db, broker, cursor)
    await running.start()
    try:
        values = await read(broker, 2)  # sent, not recorded as sent, sent again
    finally:
        await running.stop()
    assert actions(values) == [("LOT-7", "hold"), ("LOT-7", "hold")]
    assert values[0]["message_id"] == values[1]["message_id"]
    assert cursor.load() == store.trail()[-1].seq


async def test_the_broker_away_at_start_delays_but_loses_nothing(
    store: RecordStore, db: str
) -> None:
    record_id = open_record(store)
    set_holds(store, record_id, [hold("LOT-7")], minutes=2)
    late = EmbeddedBroker(port=free_port())
    running = publisher(store, db, late)
    await running.start()
    try:
        await asyncio.sleep(0.3)
        assert TrailCursor.open(db, TOPIC).load() == 0
        with late:
            assert actions(await read(late, 1)) == [("LOT-7", "hold")]
            await running.stop()  # before the broker goes
    finally:
        await running.stop()


async def test_the_command_publishes_and_stops_on_sigterm(
    store: RecordStore, db: str, broker: EmbeddedBroker
) -> None:
    record_id = open_record(store)
    set_holds(store, record_id, [hold("LOT-7")], minutes=2)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "detectors.containment", "--db", db, "--bootstrap-servers",
        broker.bootstrap, "--interval-s", "0.2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert actions(await read(broker, 1)) == [("LOT-7", "hold")]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0, out.decode()
    assert TrailCursor.open(db, TOPIC).load() == store.trail()[-1].seq


def test_the_command_refuses_a_missing_database(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "detectors.containment", "--db", str(tmp_path / "none.db"),
         "--bootstrap-servers", "127.0.0.1:1"], capture_output=True, text=True, timeout=20,
    )
    assert done.returncode == 2
    assert "no records database" in done.stderr
