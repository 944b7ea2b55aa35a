"""`RecordsGate`: the one records-store connection of the web service, owned by one thread.

The store is synchronous and not shared between threads, so every call runs on a single
worker thread, one at a time. The database may not exist yet when the service starts (the
classifier creates it): the gate then raises `StoreNotReady` and never creates the file.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Connection

from detectors.records import (
    NotMigrated,
    RecordStore,
    StoreUnavailable,
    WorkflowSettings,
    open_store,
)
from detectors.records.target import sqlite_path

T = TypeVar("T")

log = logging.getLogger(__name__)


class StoreNotReady(Exception):
    """The records database is not there yet (no file, or no tables); nothing to show."""


class RecordsGate:
    """Runs store calls on one owned thread; opens the store lazily, once it exists."""

    def __init__(self, target: str, *, schema: str | None = None,
                 workflow: WorkflowSettings | None = None) -> None:
        self._target = target
        self._schema = schema
        self._workflow = workflow
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="otwatch-web-db")
        self._store: RecordStore | None = None

    async def run(self, call: Callable[[RecordStore], T]) -> T:
        """Run ``call(store)`` on the store's thread and return its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, call)

    async def read(self, call: Callable[[Connection], T]) -> T:
        """Run ``call(conn)`` in one read transaction on the store's thread."""
        def inside(store: RecordStore) -> T:
            with store.database.read() as conn:
                return call(conn)
        return await self.run(inside)

    async def write(self, call: Callable[[Connection], T]) -> T:
        """Run ``call(conn)`` in one write transaction on the store's thread."""
        def inside(store: RecordStore) -> T:
            with store.database.write() as conn:
                return call(conn)
        return await self.run(inside)

    def _call(self, call: Callable[[RecordStore], T]) -> T:
        store = self._open()
        try:
            return call(store)
        except NotMigrated as exc:
            raise StoreNotReady(
                "the records database has no tables yet (or an older schema); the classifier "
                "creates and migrates them"
            ) from exc
        except StoreUnavailable:
            self._drop()  # reconnect on the next request
            raise

    def _open(self) -> RecordStore:
        if self._store is not None:
            return self._store
        path = sqlite_path(self._target)
        if path is not None and not path.exists():
            raise StoreNotReady(
                f"no records database at {str(path)!r} yet; the classifier creates it with "
                "its first record"
            )
        self._store = open_store(self._target, schema=self._schema, settings=self._workflow)
        return self._store

    def _drop(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            try:
                store.close()
            except Exception:  # already broken; closing is best effort
                log.debug("closing a broken records connection failed", exc_info=True)

    async def close(self) -> None:
        """Close the store on its own thread, then stop the thread."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._drop)
        self._pool.shutdown(wait=True)
