"""The baseline journal kept in the spool file (`agent.baseline`).

The baseline moves that go with the events of an append are written in the same transaction
(`agent.spool.append.insert_events`), one row per controller: after a crash the agent replays
them over its last baseline snapshot, so a change that is in the spool is never reported a
second time, and the agent need not write its whole baseline for every change. Once a snapshot
holding them is durable, they are trimmed here.
"""

from __future__ import annotations

import json
import sqlite3

#: The baseline moves of one controller that go with the events of an append: (controller,
#: JSON object of tag name to reading, as `agent.baseline.encode_tags` writes it).
BaselineMove = tuple[str, str]


def has_legacy_rows(db: sqlite3.Connection) -> bool:
    """Whether the per-tag journal of an earlier version still holds rows."""
    return bool(db.execute("SELECT 1 FROM baseline_journal LIMIT 1").fetchone())


def journalled_moves(db: sqlite3.Connection) -> list[BaselineMove]:
    """The journalled moves, oldest first; the per-tag rows of an earlier version, each as a
    move of one tag, come first."""
    legacy = db.execute("SELECT controller, tag, reading FROM baseline_journal ORDER BY id")
    moves = [(str(c), f"{{{json.dumps(t)}: {r}}}") for c, t, r in legacy]
    cur = db.execute("SELECT controller, readings FROM baseline_moves ORDER BY id")
    return moves + [(str(c), str(r)) for c, r in cur]


def journal_head(db: sqlite3.Connection) -> int:
    """The id of the newest journalled move (0: none)."""
    (head,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM baseline_moves").fetchone()
    return int(head)


def trim_journal(db: sqlite3.Connection, upto: int, *, legacy: bool) -> None:
    """Delete the moves up to the id ``upto`` and, with ``legacy``, every per-tag row."""
    if upto:
        db.execute("DELETE FROM baseline_moves WHERE id <= ?", (upto,))
    if legacy:
        db.execute("DELETE FROM baseline_journal")
