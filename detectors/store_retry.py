"""The classifier's records store, kept open through database outages: `RetryingStore`.

A records database that is down, restarting, refusing logins or not created yet is normal life
for a service that runs for months; the classifier must neither crash on it nor lose what it
read. So every call to the store goes through `RetryingStore.call`: when the database is
unavailable (`detectors.records.StoreUnavailable`), the store is closed, the same call is made
again on a store opened afresh, with capped backoff (0.5 s doubling to 10 s), until it succeeds
or the task is cancelled. The caller waits meanwhile: the batch in hand is neither recorded nor
committed, so nothing read is lost, and the store's dedupe on ``event_id`` makes any redelivery
harmless. Each outage is logged once (`agent.runtime.outage.OutageLog`): one ERROR line when it
starts, one INFO line when the database is back.

A refusal that waiting cannot cure (a schema the role may not use, a database that refuses
the migration) is not retried: it is raised as the `RecordsError` it is.

Each call runs in a worker thread, one at a time (the store has one connection): SQLite steps
and PostgreSQL answers without the event loop, which meanwhile reads and parses the next batch
(`detectors.suspects`). A call whose caller is cancelled still waits for its thread to finish
before it lets the next call in, so two threads never share the connection.

Opening is the same retry (`open`), bounded by a stop event instead of a cancel: the classifier
waits at start for a database that is not there yet, and SIGTERM still stops it cleanly.

Example::

    >>> store = RetryingStore("postgresql://otwatch@db/otwatch")
    >>> if await store.open(stop):                    # False: stopped before it opened
    ...     outcomes = await store.call(lambda s: s.record_events(items, now=now))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from typing import TypeVar

from agent.runtime.backoff import Backoff
from agent.runtime.outage import OutageLog
from detectors.records import RecordStore, StoreUnavailable, open_store

log = logging.getLogger(__name__)

T = TypeVar("T")


def redact(target: str) -> str:
    """The target as it may be logged: a DSN's password replaced by ``***``."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", target)


def one_line(exc: BaseException) -> str:
    """An error's text on one line (psycopg's span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


class RetryingStore:
    """One records store (SQLite file or PostgreSQL DSN), re-opened while unavailable."""

    def __init__(
        self,
        target: str,
        *,
        store: RecordStore | None = None,
        opener: Callable[[str], RecordStore] = open_store,
        backoff: Backoff | None = None,
    ) -> None:
        self.target = target
        self._store = store
        self._opener = opener
        self._backoff = backoff or Backoff(first_s=0.5, cap_s=10.0)
        self._reopening = asyncio.Lock()
        #: One call at a time on the store's one connection (calls run in a worker thread).
        self._busy = asyncio.Lock()
        where = f"records database {redact(target)} (classifier.records_db)"
        self._outage = OutageLog(
            log,
            f"{where} unavailable; holding what was read (no offset is committed) and retrying",
            f"{where} available again; recording what was held",
        )

    async def open(self, stop: asyncio.Event) -> bool:
        """Open and migrate, retrying while the database is unavailable; False if ``stop`` is
        set first. A refusal that waiting cannot cure raises `RecordsError`."""
        while not stop.is_set():
            try:
                await self._reopen()
            except StoreUnavailable as exc:
                self._outage.failure(one_line(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._backoff.next())
                continue
            self._recovered()
            return True
        return False

    async def call(self, operation: Callable[[RecordStore], T]) -> T:
        """``operation(store)``, made again on a fresh store while the database is unavailable.

        Blocks the caller (not the event loop) until it succeeds; cancel the task to give up.
        The operation runs in a worker thread, after any call still running has finished.
        """
        async with self._busy:
            return await self._call(operation)

    async def _call(self, operation: Callable[[RecordStore], T]) -> T:
        while True:
            try:
                store = self._store
                if store is None:
                    store = await self._reopen()
                result = await _in_thread(operation, store)
            except StoreUnavailable as exc:
                self._outage.failure(one_line(exc))
                self.close()
                await asyncio.sleep(self._backoff.next())
                continue
            self._recovered()
            return result

    async def _reopen(self) -> RecordStore:
        """A store opened and migrated afresh (in a thread: a connect may take seconds)."""
        async with self._reopening:
            if self._store is None:
                self._store = await asyncio.to_thread(self._open_migrated)
            return self._store

    def _open_migrated(self) -> RecordStore:
        store = self._opener(self.target)
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
        return store

    def _recovered(self) -> None:
        self._outage.success()
        self._backoff.reset()

    @property
    def store(self) -> RecordStore:
        """The open store (after `open`); for reads that need no retry."""
        if self._store is None:
            raise StoreUnavailable(f"records database {redact(self.target)} is not open")
        return self._store

    def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()


async def _in_thread(operation: Callable[[RecordStore], T], store: RecordStore) -> T:
    """``operation(store)`` in a worker thread. A cancel of the caller waits for the thread
    (a transaction cannot be abandoned half-way from outside), then propagates."""
    running = asyncio.ensure_future(asyncio.to_thread(operation, store))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        await asyncio.wait({running})
        raise
