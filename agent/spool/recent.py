"""The rows this spool appended last, kept in memory so the drain need not read them back.

The agent's drain sends what was appended a moment ago: reading those rows back from SQLite
(a step, a tuple and a copy of the value per row) was about a microsecond per event, a tenth
of the spool's CPU. `RecentRows` keeps the rows of the last appends, as committed, with the
ids SQLite gave them (consecutive: one writer, ``AUTOINCREMENT``). A read is answered from
here only when these rows are, provably, every row of the queue after the point asked for:
the first kept id is at or before it, and the newest id in the file is the newest kept (a
row another connection added, the spool CLI's requeue say, sends the read to SQLite). Any
removal other than the watermark's (a quarantine, an ack out of order, a requeue) forgets
them all; so does passing `MAX_ROWS` or `MAX_BYTES` (the broker away: the drain then reads
from SQLite, as before, until it has caught up with newer appends).

Only the agent's own connection removes rows from the queue while the agent runs: the state
CLI's requeue only adds rows (with new ids, caught by the newest-id check), and nothing else
may delete queued rows under a running agent. A row deleted by hand from another connection
would still be sent from here, and counted by the next ack.
"""

from __future__ import annotations

from collections.abc import Sequence

#: A queued row: (row_id, topic, key, value), as `agent.spool.store.Spool.peek` returns it.
Row = tuple[int, str, bytes, bytes]

#: Kept rows, at most: a drain that keeps up needs the last append or two (the publisher
#: reads batches of 1,000); kept small, as the agent's memory is (a broker away for long
#: would otherwise hold the most it may here, for nothing).
MAX_ROWS = 5_000
#: Kept bytes of keys and values, at most.
MAX_BYTES = 8 * 2**20


class RecentRows:
    """The queue's newest rows with consecutive ids, oldest first."""

    def __init__(self) -> None:
        self._rows: list[Row] = []
        self._bytes = 0

    def add(self, rows: Sequence[Row], size: int) -> None:
        """Keep ``rows`` (consecutive ids, just committed; ``size`` bytes of keys and values)
        after those kept, or instead of them when the ids do not follow on."""
        if not rows:
            return
        if self._rows and self._rows[-1][0] + 1 != rows[0][0]:
            self.forget()
        self._rows.extend(rows)
        self._bytes += size
        if len(self._rows) > MAX_ROWS or self._bytes > MAX_BYTES:
            self.forget()

    def after(self, start: int, limit: int, newest_id: int) -> list[Row] | None:
        """The first ``limit`` rows with an id over ``start``, or None when the kept rows may
        not be all of them (``newest_id``: the largest id in the file, 0 when empty)."""
        rows = self._rows
        if not rows or rows[0][0] > start + 1 or rows[-1][0] != newest_id:
            return None
        first = max(start + 1 - rows[0][0], 0)
        return rows[first : first + limit]

    def oldest(self, acked_upto: int, ids: list[int]) -> int | None:
        """The bytes of the rows ``ids`` (sorted, consecutive) when they are the oldest of the
        queue (just above the watermark ``acked_upto``) and all kept, else None."""
        rows = self._rows
        if not rows or not rows[0][0] <= ids[0] == acked_upto + 1 or ids[-1] > rows[-1][0]:
            return None
        first = ids[0] - rows[0][0]
        return sum(len(key) + len(value) for _, _, key, value in rows[first : first + len(ids)])

    def drop_upto(self, row_id: int, size: int | None = None) -> None:
        """Forget the rows up to ``row_id`` (acknowledged: below the watermark; ``size``: the
        bytes of those kept, when known)."""
        rows = self._rows
        if not rows or rows[0][0] > row_id:
            return
        if rows[-1][0] <= row_id:
            self.forget()
            return
        count = row_id + 1 - rows[0][0]
        self._bytes -= size if size is not None else sum(
            len(key) + len(value) for _, _, key, value in rows[:count])
        del rows[:count]

    def forget(self) -> None:
        self._rows = []
        self._bytes = 0
