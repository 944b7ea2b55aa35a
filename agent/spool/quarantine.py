"""The spool's quarantine: rows the broker refuses for good, kept aside, not sent.

A row the broker refuses for good (too large, invalid: retrying cannot help) must not hold
back the rows behind it. The publisher moves it with `agent.spool.store.Spool.quarantine` into
the ``quarantine`` table of the same database, with the reason, in one transaction: it is
kept (nothing is lost; ``otwatch-agent spool show`` lists it, ``spool requeue`` puts it back
in the queue once the cause is fixed), counted (``otwatch_agent_spool_quarantined_total``,
gauge ``otwatch_agent_spool_quarantine_events``) and reported in the heartbeat.

Each function here runs its own transaction and leaves it open on a failure, for the spool to
roll back.
"""

from __future__ import annotations

import sqlite3

#: A quarantined row as `Spool.quarantined_rows` lists it.
QuarantinedRow = tuple[int, int, str, int, float, str]


def move_to_quarantine(
    db: sqlite3.Connection, row_id: int, reason: str, *, acked_upto: int, now: float
) -> tuple[int, int] | None:
    """Move the queued row ``row_id`` (above the watermark ``acked_upto``) into quarantine
    with ``reason``; returns its ``(seq, size)``, or None if it was already gone."""
    db.execute("BEGIN IMMEDIATE")
    row = db.execute(
        "SELECT seq, size FROM events WHERE id = ? AND id > ?", (row_id, acked_upto)
    ).fetchone()
    if row is not None:
        db.execute(
            "INSERT INTO quarantine (id, seq, topic, key, value, size, appended_at,"
            " quarantined_at, reason) SELECT id, seq, topic, key, value, size,"
            " appended_at, ?, ? FROM events WHERE id = ?",
            (now, reason, row_id),
        )
        db.execute("DELETE FROM events WHERE id = ?", (row_id,))
    db.execute("COMMIT")
    return None if row is None else (int(row[0]), int(row[1]))


def list_quarantined(db: sqlite3.Connection, limit: int) -> list[QuarantinedRow]:
    """The quarantined rows, oldest first: ``(id, seq, topic, size, quarantined_at,
    reason)``."""
    cur = db.execute(
        "SELECT id, seq, topic, size, quarantined_at, reason FROM quarantine"
        " ORDER BY id LIMIT ?",
        (limit,),
    )
    return [(int(a), int(b), str(c), int(d), float(e), str(f)) for a, b, c, d, e, f in cur]


def requeue_all(db: sqlite3.Connection) -> tuple[int, int]:
    """Move every quarantined row back to the end of the queue, same bytes, same seq;
    returns ``(rows, bytes)``."""
    db.execute("BEGIN IMMEDIATE")
    count, size = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM quarantine"
    ).fetchone()
    db.execute(
        "INSERT INTO events (seq, topic, key, value, size, appended_at)"
        " SELECT seq, topic, key, value, size, appended_at FROM quarantine ORDER BY id"
    )
    db.execute("DELETE FROM quarantine")
    db.execute("COMMIT")
    return int(count), int(size)
