"""Lot holds and their release, from the audit trail to ``otwatch.containment`` for the MES.

Quality places a lot hold on a master record (``update_field(record, "containment", …)`` or
``"containment.lot_holds"``); the MES has to stop that lot. `ContainmentPublisher` follows the
audit trail from a persisted cursor and, for every trail entry that changes a record's lot holds,
sends one ``otwatch.containment/1`` message per lot that was held or released, keyed by record
id (so one record's holds and releases stay in order on one partition).

Delivery is at-least-once: the cursor (the last trail seq published) is advanced only after the
broker acknowledged every message of the batch, in a table of the records database itself
(``containment_cursor``, one row per topic, created by the records migrations), so a restored
backup never points the cursor past entries the database holds. A crash between the
acknowledgement and the cursor write sends the batch again; the MES dedupes on
``message_id`` (``<trail_seq>/<lot>/<action>``).

What counts as a change, per lot id (a record may list a lot more than once, e.g. held,
released and held again; the lot is *held* while any of its entries has no ``released_at``):

    held before   held after   message
    no            yes          hold     (time: the newest open hold's held_at)
    yes           no, listed   release  (time: the newest released_at)
    yes           not listed   release  (the hold was removed from the record; time: the entry's)

The pure part (`lot_changes`, `message`) is tested without broker or database.

Example::

    >>> publisher = ContainmentPublisher(store, cursor, KafkaSettings(
    ...     bootstrap_servers="127.0.0.1:9092", enable_idempotence=False))
    >>> await publisher.start()
    >>> ...
    >>> await publisher.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from agent.kafka_settings import KafkaSettings
from agent.publisher import demote_kafka_client_logs, ensure_topics, log_task_crash
from detectors.records import LotHold, RecordsError, RecordStore, StoreUnavailable, TrailEntry
from detectors.records.db import Database, connect
from detectors.records.trail import iso

log = logging.getLogger(__name__)

SCHEMA = "otwatch.containment/1"
DEFAULT_TOPIC = "otwatch.containment"
CONTAINMENT_FIELDS = ("containment", "containment.lot_holds")
#: The records schema version whose migration creates ``containment_cursor``.
CURSOR_SCHEMA_VERSION = 2

Action = Literal["hold", "release"]


@dataclass(frozen=True, slots=True)
class LotChange:
    """One lot held or released by one trail entry."""

    lot_id: str
    action: Action
    at: datetime
    released_by: str | None = None


# --- the pure core ---------------------------------------------------------------------------


def _holds(field: str, value: str | None) -> list[LotHold]:
    """The lot holds inside one side (old or new) of a containment trail entry."""
    if value is None:
        return []
    data = orjson.loads(value)
    raw = data.get("lot_holds", []) if field == "containment" else data
    return [LotHold.model_validate(item) for item in raw or []]


def _by_lot(holds: Sequence[LotHold]) -> dict[str, list[LotHold]]:
    found: dict[str, list[LotHold]] = {}
    for hold in holds:
        found.setdefault(hold.lot_id, []).append(hold)
    return found


def _open(holds: Sequence[LotHold]) -> list[LotHold]:
    return [h for h in holds if h.released_at is None]


def _change(
    lot: str, before: list[LotHold], after: list[LotHold], at: datetime
) -> LotChange | None:
    held_before, held_after = bool(_open(before)), bool(_open(after))
    if held_after and not held_before:
        return LotChange(lot, "hold", max(h.held_at for h in _open(after)))
    if held_before and not held_after:
        released = [h for h in after if h.released_at is not None]
        if not released:
            return LotChange(lot, "release", at)  # the hold was removed from the record
        newest = max(released, key=lambda h: h.released_at or at)
        return LotChange(lot, "release", newest.released_at or at, newest.released_by)
    return None


def lot_changes(entry: TrailEntry) -> list[LotChange]:
    """The lots one trail entry held or released (none for any other field), in lot order."""
    if entry.field not in CONTAINMENT_FIELDS:
        return []
    before = _by_lot(_holds(entry.field, entry.old))
    after = _by_lot(_holds(entry.field, entry.new))
    at = datetime.fromisoformat(entry.at)
    changes = (
        _change(lot, before.get(lot, []), after.get(lot, []), at)
        for lot in sorted(before.keys() | after.keys())
    )
    return [c for c in changes if c is not None]


def message(
    entry: TrailEntry, change: LotChange, *, ticket_id: str, controller: str
) -> dict[str, Any]:
    """The ``otwatch.containment/1`` message for one lot change; ``message_id`` is stable."""
    return {
        "schema": SCHEMA,
        "message_id": f"{entry.seq}/{change.lot_id}/{change.action}",
        "trail_seq": entry.seq,
        "record_id": entry.record_id,
        "ticket_id": ticket_id,
        "controller": controller,
        "lot": change.lot_id,
        "action": change.action,
        "reason": entry.reason,
        "actor": entry.actor,
        "released_by": change.released_by,
        "time": iso(change.at),
        "recorded_at": entry.at,
    }


# --- the cursor ------------------------------------------------------------------------------


class TrailCursor:
    """The last trail seq published to one topic, in the records database (own connection).

    Its table ``containment_cursor`` comes with the records migrations (schema 2); the
    publisher never creates or migrates it. ``save`` only ever moves the cursor forward.
    """

    def __init__(self, db: Database, topic: str) -> None:
        self._db = db
        self.topic = topic
        version = RecordStore(db).schema_version()  # the same connection, read once
        if version < CURSOR_SCHEMA_VERSION:
            raise StoreUnavailable(
                f"the records database is at schema version {version}; the containment cursor "
                f"needs {CURSOR_SCHEMA_VERSION}: run the classifier or `otwatch-records migrate` "
                "against it first"
            )

    @classmethod
    def open(cls, target: str, topic: str, *, schema: str | None = None) -> TrailCursor:
        db = connect(target, schema=schema)
        try:
            return cls(db, topic)
        except BaseException:
            db.close()
            raise

    def load(self) -> int:
        with self._db.read():
            rows = self._db.query("SELECT seq FROM containment_cursor WHERE topic = ?",
                                  (self.topic,))
        return int(rows[0][0]) if rows else 0

    def save(self, seq: int, now: datetime) -> None:
        with self._db.write():
            self._db.execute(
                "INSERT INTO containment_cursor (topic, seq, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (topic) DO UPDATE SET seq = excluded.seq, "
                "updated_at = excluded.updated_at WHERE containment_cursor.seq < excluded.seq",
                (self.topic, seq, iso(now)),
            )

    def close(self) -> None:
        self._db.close()


# --- the publisher ---------------------------------------------------------------------------


@dataclass
class PublisherStatus:
    cursor: int = 0
    published: int = 0
    failing: bool = False


class ContainmentPublisher:
    """Follows the audit trail and publishes lot holds and releases; `start()` / `stop()`.

    The store is used from the event loop's thread only (like the classifier does); give the
    publisher its own `RecordStore` when another thread uses one.
    """

    def __init__(
        self, store: RecordStore, cursor: TrailCursor, kafka: KafkaSettings, *,
        topic: str = DEFAULT_TOPIC, interval_s: float = 1.0, batch: int = 500,
    ) -> None:
        self.store = store
        self.cursor = cursor
        self.kafka = kafka
        self.topic = topic
        self.interval_s = interval_s
        self.batch = batch
        self.status = PublisherStatus()
        self._records: dict[str, tuple[str, str]] = {}
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the owned task (it connects to the broker with retry, then follows the trail)."""
        if self._task is not None:
            raise RuntimeError("ContainmentPublisher already started")
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="otwatch-containment")
        self._task.add_done_callback(log_task_crash)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the batch in flight if it can within ``timeout_s``; then cancel and await."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stop.set()
        done, _ = await asyncio.wait([task], timeout=timeout_s)
        if not done:
            task.cancel()
            await asyncio.wait([task], timeout=timeout_s)

    async def wait(self) -> None:
        """Until the task ends (after `stop()`, or a crash, which is raised here)."""
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        demote_kafka_client_logs()
        producer = await self._start_producer()
        if producer is None:
            return
        try:
            await ensure_topics(self.kafka, [self.topic])
            self.status.cursor = self.cursor.load()
            log.info("containment: publishing lot holds to %s after trail seq %d",
                     self.topic, self.status.cursor)
            while not self._stop.is_set():
                await self._pass(producer)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.interval_s)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 10)

    async def _start_producer(self) -> AIOKafkaProducer | None:
        """A started producer, retrying quietly while the broker is away; None on stop."""
        delay, logged = 0.5, False
        while not self._stop.is_set():
            producer = AIOKafkaProducer(**self.kafka.producer_kwargs())
            try:
                await producer.start()
                return producer
            except KafkaError as exc:
                with contextlib.suppress(Exception):
                    await producer.stop()
                if not logged:
                    log.error("containment: Kafka producer cannot start (%s); retrying", exc)
                    logged = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            delay = min(delay * 2, 10.0)
        return None

    async def _pass(self, producer: AIOKafkaProducer) -> None:
        """Publish until caught up; an outage is logged once and retried on the next pass."""
        try:
            while not self._stop.is_set() and await self.publish_batch(producer):
                pass
        except (KafkaError, RecordsError) as exc:
            if not self.status.failing:
                log.error("containment: cannot publish after trail seq %d (%s); retrying",
                          self.status.cursor, exc)
            self.status.failing = True
            return
        if self.status.failing:
            log.info("containment: publishing again (cursor at trail seq %d)", self.status.cursor)
        self.status.failing = False

    async def publish_batch(self, producer: AIOKafkaProducer) -> bool:
        """Send the next batch of trail entries; True when there may be more after it."""
        entries = self.store.trail_since(self.status.cursor, self.batch)
        if not entries:
            return False
        sends = []
        for entry in entries:
            for body in self._messages(entry):
                value = orjson.dumps(body)
                sends.append(await producer.send(self.topic, value, key=entry.record_id.encode()))
        acks = await asyncio.gather(*sends, return_exceptions=True)
        failed = [a for a in acks if isinstance(a, BaseException)]
        if failed:
            raise failed[0]  # the cursor stays: the whole batch goes again (at-least-once)
        self.cursor.save(entries[-1].seq, datetime.now(UTC))
        self.status.cursor = entries[-1].seq
        self.status.published += len(sends)
        return len(entries) == self.batch

    def _messages(self, entry: TrailEntry) -> list[dict[str, Any]]:
        changes = lot_changes(entry)
        if not changes:
            return []
        ticket_id, controller = self._record(entry.record_id)
        for change in changes:
            log.info("containment: %s %s %s (record %s, trail seq %d)", change.action,
                     controller, change.lot_id, entry.record_id, entry.seq)
        return [message(entry, c, ticket_id=ticket_id, controller=controller) for c in changes]

    def _record(self, record_id: str) -> tuple[str, str]:
        """Ticket id and controller of a record (both fixed at creation, so cached)."""
        if record_id not in self._records:
            record = self.store.get_record(record_id)
            self._records[record_id] = (record.security_ticket, record.controller)
        return self._records[record_id]


if __name__ == "__main__":
    from detectors.containment_cli import main

    raise SystemExit(main())
