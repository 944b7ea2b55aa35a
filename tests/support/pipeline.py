"""Waiting on the pipeline's processes and reading the records they wrote: the helpers the
classifier tests (`tests.detectors`) and the end-to-end tests (`tests.e2e`) share."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from detectors.records import MasterRecord, open_store
from simulators.demo import Pipeline

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float, what: str,
               alive: Callable[[], None] | None = None) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    ``alive`` raises when a process the wait depends on has died, so that a crash fails the
    test at once rather than at the timeout; e.g. ``wait_until(lambda: records(db), 60,
    "a master record", pipeline.check_alive)``.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        if alive is not None:
            alive()
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def records(db: Path) -> list[MasterRecord]:
    """Every master record in the SQLite database at ``db``; none while it is not there yet."""
    if not db.exists():
        return []
    store = open_store(str(db))
    try:
        return store.list_records()
    except Exception:  # the schema may not exist yet
        return []
    finally:
        store.close()


@contextmanager
def demo_pipeline(workdir: Path) -> Iterator[Pipeline]:
    """The demo harness's `Pipeline` in ``workdir``; every process stopped (by PID) on exit."""
    running = Pipeline(workdir)
    try:
        yield running
    finally:
        procs = list(running.procs)  # `stop()` forgets them
        running.stop()
    assert not any(p.poll() is None for _, p in procs)
