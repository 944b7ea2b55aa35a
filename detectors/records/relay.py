"""A trail relay: follow the audit trail from a cursor kept in the records database and hand
each entry's messages to a sink, at least once.

Three parts, so that every relay (the containment publisher today, the ticket outbox next)
shares the delivery logic and only writes what differs:

- `TrailCursor`: the last trail seq a relay delivered, one row per relay name in the
  ``relay_cursor`` table of the records database itself (a restored backup never points a
  cursor past entries the database holds); it only moves forward.
- a pure ``translate(entry, header) -> list[Outgoing]``: the messages one trail entry makes
  (most entries make none); ``header`` carries the record's creation facts.
- a `Sink`: opens (with its own retry), sends a batch and returns only when every message of
  it was acknowledged, or raises.

`TrailRelay` ties them together: read a batch after the cursor, translate, send, then save the
cursor. A crash between the acknowledgement and the cursor write sends the batch again, so a
consumer dedupes on a stable message id (trail seq + what the message is about).

Example::

    >>> relay = TrailRelay(store, TrailCursor.open(db, "otwatch.containment"), translate,
    ...                    sink, name="containment")
    >>> await relay.start(); ...; await relay.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from detectors.records._exceptions import RecordsError, StoreUnavailable
from detectors.records.db import Database, Dialect, connect
from detectors.records.migrate import HEAD, schema_version
from detectors.records.models import RecordHeader, TrailEntry
from detectors.records.store import RecordStore
from detectors.records.tables import relay_cursor
from detectors.records.trail import iso

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message for a sink: its key (ordering: one record, one key) and its JSON body."""

    key: bytes
    value: dict[str, Any]


Translate = Callable[[TrailEntry, RecordHeader], list[Outgoing]]


class Sink(Protocol):
    """Where a relay delivers. ``failures`` are the errors that mean "try again later"."""

    failures: tuple[type[BaseException], ...]

    async def open(self, stop: asyncio.Event) -> bool:
        """Get ready, retrying quietly; False if ``stop`` was set first."""
        ...

    async def send(self, messages: Sequence[Outgoing]) -> None:
        """Deliver every message, or raise one of ``failures`` (the batch goes again)."""
        ...

    async def close(self) -> None: ...


class TrailCursor:
    """The last trail seq one relay delivered, in the records database (own connection).

    Its table comes with the records migrations; the relay never creates or migrates it, and
    refuses a database whose schema is not the current one. ``save`` only moves forward.
    """

    def __init__(self, db: Database, name: str) -> None:
        self._db = db
        self.name = name
        version = schema_version(db)
        if version < HEAD:
            raise StoreUnavailable(
                f"the records database is at schema version {version}; the trail relay needs "
                f"{HEAD}: run the classifier or `otwatch-records migrate` against it first"
            )

    @classmethod
    def open(cls, target: str, name: str, *, schema: str | None = None) -> TrailCursor:
        db = connect(target, schema=schema)
        try:
            return cls(db, name)
        except BaseException:
            db.close()
            raise

    def load(self) -> int:
        with self._db.read() as conn:
            seq = conn.execute(
                select(relay_cursor.c.seq).where(relay_cursor.c.name == self.name)
            ).scalar()
        return int(seq or 0)

    def save(self, seq: int, now: datetime) -> None:
        with self._db.write() as conn:
            conn.execute(self._upsert(), {"name": self.name, "seq": seq, "updated_at": iso(now)})

    def _upsert(self) -> Any:
        """Insert, or move forward only: a slower second relay never moves the cursor back."""
        if self._db.dialect is Dialect.POSTGRESQL:
            pg = postgresql.insert(relay_cursor)
            return pg.on_conflict_do_update(
                index_elements=[relay_cursor.c.name],
                set_={"seq": pg.excluded.seq, "updated_at": pg.excluded.updated_at},
                where=relay_cursor.c.seq < pg.excluded.seq,
            )
        lite = sqlite.insert(relay_cursor)
        return lite.on_conflict_do_update(
            index_elements=[relay_cursor.c.name],
            set_={"seq": lite.excluded.seq, "updated_at": lite.excluded.updated_at},
            where=relay_cursor.c.seq < lite.excluded.seq,
        )

    def close(self) -> None:
        self._db.close()


@dataclass
class RelayStatus:
    cursor: int = 0
    published: int = 0
    failing: bool = False


#: Trail entries that change a record's `RecordHeader` (`detectors.records.incident`, and the
#: security ticket a quality-only record gets when security evidence joins it).
HEADER_FIELDS = frozenset({"classification", "headline", "security_ticket"})


class TrailRelay:
    """Follows the trail and delivers what ``translate`` makes of it; `start()` / `stop()`.

    The store is used from the event loop's thread only; give the relay its own `RecordStore`
    when another thread uses one.
    """

    def __init__(
        self, store: RecordStore, cursor: TrailCursor, translate: Translate, sink: Sink, *,
        name: str, interval_s: float = 1.0, batch: int = 500,
    ) -> None:
        self.store = store
        self.cursor = cursor
        self.translate = translate
        self.sink = sink
        self.name = name
        self.interval_s = interval_s
        self.batch = batch
        self.status = RelayStatus()
        self._headers: dict[str, RecordHeader] = {}
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, on_crash: Callable[[asyncio.Task[None]], object] | None = None) -> None:
        """Start the owned task (it opens the sink with retry, then follows the trail)."""
        if self._task is not None:
            raise RuntimeError(f"{self.name} relay already started")
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name=f"otwatch-{self.name}")
        if on_crash is not None:
            self._task.add_done_callback(on_crash)

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
        if not await self.sink.open(self._stop):
            return
        try:
            self.status.cursor = self.cursor.load()
            log.info("%s: relaying after trail seq %d", self.name, self.status.cursor)
            while not self._stop.is_set():
                await self._pass()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.interval_s)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.sink.close(), 10)

    async def _pass(self) -> None:
        """Relay until caught up; an outage is logged once and retried on the next pass."""
        retry: tuple[type[BaseException], ...] = (RecordsError, *self.sink.failures)
        try:
            while not self._stop.is_set() and await self.relay_batch():
                pass
        except retry as exc:
            if not self.status.failing:
                log.error("%s: cannot relay after trail seq %d (%s); retrying", self.name,
                          self.status.cursor, exc)
            self.status.failing = True
            return
        if self.status.failing:
            log.info("%s: relaying again (cursor at trail seq %d)", self.name,
                     self.status.cursor)
        self.status.failing = False

    async def relay_batch(self) -> bool:
        """Deliver the next batch of trail entries; True when there may be more after it."""
        entries = self.store.trail_since(self.status.cursor, self.batch)
        if not entries:
            return False
        messages = self._messages(entries)
        if messages:
            await self.sink.send(messages)  # raises: the cursor stays, the batch goes again
        self.cursor.save(entries[-1].seq, datetime.now(UTC))
        self.status.cursor = entries[-1].seq
        self.status.published += len(messages)
        return len(entries) == self.batch

    def _messages(self, entries: Sequence[TrailEntry]) -> list[Outgoing]:
        # The facts are cached for the relay's life, but for a record that evidence escalated
        # (a new classification, headline or security ticket): read again, once per batch.
        for entry in entries:
            if entry.field in HEADER_FIELDS:
                self._headers.pop(entry.record_id, None)
        missing = {e.record_id for e in entries} - self._headers.keys()
        if missing:
            self._headers.update(self.store.record_headers(missing))
        out: list[Outgoing] = []
        for entry in entries:
            header = self._headers.get(entry.record_id)
            if header is not None:
                out += self.translate(entry, header)
        return out
