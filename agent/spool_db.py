"""The spool's SQLite file: its schema, opening it in WAL mode with full fsync, its errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent.kafka.errors import DeliveryError

__all__ = ["SpoolError", "SpoolFull", "open_spool_db"]


class SpoolError(DeliveryError):
    """The spool database failed (cannot open, corrupt, I/O error); the message names the file."""


class SpoolFull(SpoolError):
    """The spool refused an append: a bound was reached or the disk is full. Nothing was written.

    ``reason`` is one of ``events``, ``bytes``, ``age``, ``disk``. Retryable: room comes back as
    the publisher drains.
    """

    retryable = True

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


#: The page size of a spool file (bytes).
PAGE_SIZE = 16384
#: An existing spool with smaller pages is rebuilt with `PAGE_SIZE` ones when it is at most
#: this large (a drained spool, nearly always: the rebuild then takes milliseconds at start).
REBUILD_MAX_BYTES = 64 * 2**20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL,
    topic TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    size INTEGER NOT NULL,
    appended_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS baseline_journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    controller TEXT NOT NULL,
    tag TEXT NOT NULL,
    reading TEXT NOT NULL
);
-- The journal of baseline moves (`agent.baseline`): one row per append and controller, the
-- moved tags as one JSON object. baseline_journal (a row per tag) is what earlier versions
-- wrote; it is still replayed (before these) and trimmed. Ids never come back (AUTOINCREMENT,
-- once per append): a trim up to a mark never takes a later move.
CREATE TABLE IF NOT EXISTS baseline_moves (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    controller TEXT NOT NULL,
    readings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    topic TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    size INTEGER NOT NULL,
    appended_at REAL NOT NULL,
    quarantined_at REAL NOT NULL,
    reason TEXT NOT NULL
);
INSERT OR IGNORE INTO meta (name, value) VALUES ('last_seq', 0);
INSERT OR IGNORE INTO meta (name, value) VALUES ('acked_upto', 0);
"""


def open_spool_db(path: Path) -> sqlite3.Connection:
    """Open (or create) the spool in WAL mode with full fsync; errors name the file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
        # An event is ~1.5 KB: with 4 KB pages a 100-event commit wrote ~80 WAL writes and
        # split pages all the way; 16 KB pages cut the writes four-fold and the append's
        # SQLite CPU by ~20%. A new file takes the size here; an earlier version's is rebuilt.
        db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        _enlarge_pages(db)
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise SpoolError(f"spool {path}: the filesystem does not support WAL mode ({mode})")
        db.execute("PRAGMA synchronous=FULL")
        # Debian's (and others') SQLite is built with secure_delete on: every page a removal
        # frees is overwritten with zeros, through the WAL and again at the checkpoint. The
        # spool frees every page it writes once the broker has the rows: that rewrite was
        # ~0.8 µs of CPU per event (the compaction nine tenths of it, and the checkpoints).
        # FAST still zeroes what sits in pages written anyway. Not a secrecy measure: the
        # same bytes are on the broker, and the queued rows are on disk in clear.
        db.execute("PRAGMA secure_delete=FAST")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(_SCHEMA)
    except (sqlite3.Error, OSError) as exc:
        raise SpoolError(
            f"spool {path}: cannot open ({exc}); check the spool path setting and that the "
            "directory is writable by the agent"
        ) from exc
    return db


def _enlarge_pages(db: sqlite3.Connection) -> None:
    """Rebuild a small spool an earlier version wrote with smaller pages (``VACUUM``, which
    keeps every row and id, out of WAL mode: the only way to change the page size; atomic
    under the rollback journal). Skipped while another connection has the spool open (the
    mode cannot change then): the next start does it."""
    (size,) = db.execute("PRAGMA page_size").fetchone()
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    if not pages or size >= PAGE_SIZE or pages * size > REBUILD_MAX_BYTES:
        return
    db.execute("PRAGMA synchronous=FULL")
    try:
        (mode,) = db.execute("PRAGMA journal_mode=DELETE").fetchone()
        if str(mode).lower() == "delete":
            db.execute(f"PRAGMA page_size={PAGE_SIZE}")
            db.execute("VACUUM")
    except sqlite3.OperationalError:  # another connection holds the spool (locked)
        pass
