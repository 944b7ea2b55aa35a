"""Rows leaving the spool: what the broker acknowledged goes, by a watermark, then for good.

An acknowledged batch leaves the queue by a watermark (``acked_upto`` in ``meta``: every query
reads only the rows above it); its rows are deleted for good later by `delete_acknowledged`,
which the publisher has the spool run when the drain is idle. Both run in a transaction
committed without its own fsync (`unsynced`; why: `agent.spool.store.Spool.ack`).

The last ``seq`` handed out is the largest ``seq`` of a row; before rows go for good it is
written to ``meta`` (`keep_last_seq`), so that it outlives them (`stored_last_seq`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")
#: `Spool.compact` deletes at most this many acknowledged rows in one go when no other is left.
TRUNCATE_MAX = 50_000


def unsynced(db: sqlite3.Connection, work: Callable[[], _T]) -> _T:
    """Run ``work`` in a transaction committed without its own fsync (see `Spool.ack`)."""
    db.execute("PRAGMA synchronous=NORMAL")
    try:
        db.execute("BEGIN IMMEDIATE")
        result = work()
        db.execute("COMMIT")
        return result
    finally:
        if db.in_transaction:
            db.execute("ROLLBACK")
        db.execute("PRAGMA synchronous=FULL")


def remove_acknowledged(
    db: sqlite3.Connection, ids: list[int], *, upto: int, last_seq: int
) -> tuple[int, int, int]:
    """(rows, bytes, new watermark) of an ack inside its transaction: ``ids`` (sorted, all
    above the watermark ``upto``) leave the queue."""
    if ids[-1] - ids[0] + 1 == len(ids) and not db.execute(
        "SELECT 1 FROM events WHERE id > ? AND id < ? LIMIT 1", (upto, ids[0])
    ).fetchone():  # the oldest rows: the watermark covers exactly them
        count, size = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM events WHERE id > ? AND id <= ?",
            (upto, ids[-1]),
        ).fetchone()
        move_watermark(db, ids[-1])
        return int(count), int(size), ids[-1]
    keep_last_seq(db, last_seq)
    sizes = db.execute(
        "DELETE FROM events WHERE id IN (SELECT value FROM json_each(?)) RETURNING size",
        (f"[{','.join(map(str, ids))}]",),
    ).fetchall()
    return len(sizes), sum(int(row[0]) for row in sizes), upto


def move_watermark(db: sqlite3.Connection, upto: int) -> None:
    """Write the watermark ``acked_upto`` in the open transaction: rows up to the id ``upto``
    are acknowledged (the caller has checked they are the oldest of the queue)."""
    db.execute("UPDATE meta SET value = ? WHERE name = 'acked_upto'", (upto,))


def delete_acknowledged(
    db: sqlite3.Connection, *, upto: int, last_seq: int, limit: int,
    everything: tuple[int, int] | None,
) -> tuple[int, int]:
    """(rows, bytes) deleted for good of those below the watermark ``upto``, inside the
    transaction: at most ``limit``; ``everything`` (the rows and bytes below the watermark)
    when all of them may go at once, which they do if no row is left above it."""
    keep_last_seq(db, last_seq)
    if everything is not None and not db.execute(
        "SELECT 1 FROM events WHERE id > ? LIMIT 1", (upto,)
    ).fetchone():  # checked in the transaction, not taken from the count
        db.execute("DELETE FROM events")
        return everything
    sizes = db.execute(
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id <= ?"
        " ORDER BY id LIMIT ?) RETURNING size", (upto, limit),
    ).fetchall()
    return len(sizes), sum(int(row[0]) for row in sizes)


def stored_last_seq(db: sqlite3.Connection) -> int:
    """The last ``seq`` on disk. An append does not write it to ``meta`` (a statement and a
    row write per append, for a counter only this writer reads): it is the largest ``seq``
    of a row, queued or quarantined (a quarantined row keeps its ``seq`` in ``quarantine``),
    and the removals for good (`remove_acknowledged` out of order, `delete_acknowledged`)
    write it to ``meta`` first; an earlier version wrote it there on every append."""
    (value,) = db.execute(
        "SELECT MAX((SELECT value FROM meta WHERE name = 'last_seq'),"
        " (SELECT COALESCE(MAX(seq), 0) FROM events),"
        " (SELECT COALESCE(MAX(seq), 0) FROM quarantine))"
    ).fetchone()
    return int(value)


def keep_last_seq(db: sqlite3.Connection, last_seq: int) -> None:
    """Write the last ``seq`` to ``meta`` in the open transaction, before rows go. Never
    lower: another process (the spool CLI) may close the file with an older count."""
    db.execute("UPDATE meta SET value = MAX(value, ?) WHERE name = 'last_seq'", (last_seq,))
