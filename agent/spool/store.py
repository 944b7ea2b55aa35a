"""`Spool`: one agent's bounded, durable FIFO of events, and the only way into its file.

The class keeps what every call would otherwise count in SQL (depth, bytes, rows acknowledged
but not yet deleted, rows in quarantine, the last ``seq``), enforces the bounds, turns SQLite's
errors into `SpoolError` naming the file, and keeps the gauges. The statements of each path are
in their own modules: `agent.spool.append` (writing an append), `agent.spool.drain` (rows
leaving), `agent.spool.quarantine`, `agent.spool.journal` (baseline moves); the rows of the last
appends, which the drain reads from memory, are kept by `agent.spool.recent`; the file's schema
and opening are `agent.spool_db`.

Policy when full. The spool is bounded by ``max_events``, ``max_bytes`` and, optionally,
``max_age_s`` (the age of the oldest unpublished event). When an append would cross a bound, or
the disk under the spool is full, the *whole* append is refused with :class:`SpoolFull`: nothing
is written, no ``seq`` is consumed, nothing already spooled is dropped. The refusal is counted
(``otwatch_agent_spool_refused_total{reason}``) and logged once at ERROR per full episode (until
an append succeeds again). The caller must then treat the change as not detected (keep its
baseline unchanged so the change is found again, as a monitoring gap, once there is room).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from agent.contract import SuspectChange
from agent.contract.signing import EventSigner
from agent.kafka.settings import TopicNames
from agent.spool.append import AheadRow, insert_events
from agent.spool.drain import (
    TRUNCATE_MAX,
    delete_acknowledged,
    keep_last_seq,
    move_watermark,
    remove_acknowledged,
    stored_last_seq,
    unsynced,
)
from agent.spool.journal import (
    BaselineMove,
    has_legacy_rows,
    journal_head,
    journalled_moves,
    trim_journal,
)
from agent.spool.metrics import (
    SPOOL_APPENDED,
    SPOOL_BYTES,
    SPOOL_DEPTH,
    SPOOL_OLDEST_AGE,
    SPOOL_QUARANTINED,
    SPOOL_QUARANTINED_TOTAL,
    SPOOL_REFUSED,
)
from agent.spool.quarantine import (
    QuarantinedRow,
    list_quarantined,
    move_to_quarantine,
    requeue_all,
)
from agent.spool.recent import RecentRows, Row
from agent.spool_db import SpoolError, SpoolFull, open_spool_db

# The package's name, as before the spool was split into modules: log filters keep matching.
log = logging.getLogger("agent.spool")

__all__ = ["Row", "Spool"]


class Spool:
    """A bounded, durable FIFO of events for one agent, used from one thread."""

    def __init__(
        self,
        path: Path,
        *,
        topics: TopicNames,
        max_events: int = 1_000_000,
        max_bytes: int = 512 * 2**20,
        max_age_s: float | None = None,
        signer: EventSigner | None = None,
    ) -> None:
        self.path = Path(path)
        self.topics = topics
        self.signer = signer
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._full_logged = False
        self._db = open_spool_db(self.path)
        (acked,) = self._db.execute("SELECT value FROM meta WHERE name = 'acked_upto'").fetchone()
        self._acked_upto = int(acked)  # rows up to this id are acknowledged (`ack`)
        self._depth, self._bytes = self._count(f"id > {self._acked_upto}")
        self._dead, self._dead_bytes = self._count(f"id <= {self._acked_upto}")
        (held,) = self._db.execute("SELECT COUNT(*) FROM quarantine").fetchone()
        self._quarantined = int(held)
        self._last_seq = stored_last_seq(self._db)
        self._legacy_journal = has_legacy_rows(self._db)
        self._recent = RecentRows()  # the last appends' rows, for `peek`
        self._refresh_gauges(time.time())

    def append(
        self, events: Sequence[SuspectChange], *, now: float | None = None,
        baseline: Sequence[BaselineMove] = (), ahead: Sequence[AheadRow] = (),
        numbered: bool = True,
    ) -> list[SuspectChange]:
        """Store ``events`` in one transaction, each with the next ``seq``; durable on return.
        Returns them as numbered (the stored bytes also carry the signature, when signed);
        ``numbered=False``: returns nothing, and no numbered copy is made (the agent's path:
        it does not read them back; with a signer, the bytes are written without a copy).

        ``baseline`` moves (per controller, the tags whose baseline these events move) are
        journalled in the same transaction, one row each (not one per tag: a row per event
        was a tenth of the append's CPU): after a crash the agent replays them over its last
        baseline snapshot, so a change that is in the spool is never reported a second time,
        and the agent need not write its whole baseline for every change (`agent.baseline`).

        ``ahead`` rows (messages that are not events: the uses of single-use approvals) are
        stored in the same transaction, before the events, with ``seq`` 0; the publisher sends
        them before anything behind them.

        Raises :class:`SpoolFull` (nothing written) when a bound or the disk is reached.
        """
        now = time.time() if now is None else now
        if not events and not ahead:
            return []
        self._check_bounds(events, now)
        try:
            stored, added = self._insert_room(events, now, baseline, ahead, numbered)
        except sqlite3.OperationalError as exc:
            self._rollback()
            if "full" in str(exc).lower():
                raise self._refuse(
                    "disk",
                    len(events),
                    f"the disk under the spool {self.path} is full ({exc}); free space on that "
                    "filesystem or move the spool (spool path setting)",
                ) from exc
            raise SpoolError(f"spool {self.path}: cannot write ({exc})") from exc
        self._depth += len(events) + len(ahead)
        self._bytes += added
        self._full_logged = False
        SPOOL_APPENDED.inc(len(events))
        self._refresh_gauges(now)
        return stored

    def _insert_room(
        self, events: Sequence[SuspectChange], now: float, baseline: Sequence[BaselineMove],
        ahead: Sequence[AheadRow], numbered: bool,
    ) -> tuple[list[SuspectChange], int]:
        """`_insert`; on a full disk, once more after removing the acknowledged rows."""
        try:
            return self._insert(events, now, baseline, ahead, numbered)
        except sqlite3.OperationalError as exc:
            if "full" not in str(exc).lower() or not self._dead:
                raise
            self._rollback()
        while self.compact():
            pass
        return self._insert(events, now, baseline, ahead, numbered)

    def _insert(
        self, events: Sequence[SuspectChange], now: float, baseline: Sequence[BaselineMove],
        ahead: Sequence[AheadRow], numbered: bool,
    ) -> tuple[list[SuspectChange], int]:
        """`insert_events` after the last ``seq``, which moves on once they are committed."""
        stored, added, queued = insert_events(
            self._db, events, last_seq=self._last_seq, now=now, topics=self.topics,
            signer=self.signer, baseline=baseline, ahead=ahead, numbered=numbered,
        )
        self._last_seq += len(events)
        self._recent.add(queued, added)
        return stored, added

    def baseline_journal(self) -> list[BaselineMove]:
        """The journalled baseline moves not yet in a snapshot, oldest first (the per-tag rows
        an earlier version left, each as a move of one tag, come first)."""
        return journalled_moves(self._db)

    def baseline_journal_head(self) -> int:
        """A mark of the newest journalled move, for `trim_baseline_journal` (0: none)."""
        return journal_head(self._db)

    def trim_baseline_journal(self, upto: int) -> None:
        """Forget the moves up to the mark ``upto`` (and any per-tag rows of an earlier
        version): a baseline snapshot holding them is durable."""
        try:
            trim_journal(self._db, upto, legacy=self._legacy_journal)
        except sqlite3.Error as exc:
            raise SpoolError(
                f"spool {self.path}: cannot trim the baseline journal ({exc})"
            ) from exc
        self._legacy_journal = False

    def _check_bounds(self, events: Sequence[SuspectChange], now: float) -> None:
        n = len(events)
        if self._depth + n > self.max_events:
            raise self._refuse(
                "events",
                n,
                f"spool {self.path} holds {self._depth} events, the bound "
                f"max_events={self.max_events} is reached; the broker is not draining it",
            )
        if self._bytes >= self.max_bytes:
            raise self._refuse(
                "bytes",
                n,
                f"spool {self.path} holds {self._bytes} bytes, the bound "
                f"max_bytes={self.max_bytes} is reached; the broker is not draining it",
            )
        if self.max_age_s is None:  # no age bound: no query for the oldest row per append
            return
        age = self.oldest_age_s(now)
        if age is not None and age > self.max_age_s:
            raise self._refuse(
                "age",
                n,
                f"spool {self.path}: the oldest event waits {age:.0f} s, the bound "
                f"max_age_s={self.max_age_s:g} is reached; the broker is not draining it",
            )

    def _refuse(self, reason: str, count: int, message: str) -> SpoolFull:
        """Count the refusal, log it once per full episode, and build the exception."""
        SPOOL_REFUSED.labels(reason=reason).inc(count)
        if not self._full_logged:
            log.error("spool full, refusing new events (nothing dropped): %s", message)
            self._full_logged = True
        else:
            log.debug("spool still full: %s", message)
        return SpoolFull(message, reason=reason)

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def peek(self, limit: int, *, after: int = 0) -> list[Row]:
        """The oldest ``limit`` rows (with a row id over ``after``), oldest first:
        ``(row_id, topic, key, value)``. The rows of the last appends come from memory when
        they are all there is (`agent.spool.recent`): the drain does not read back what it
        was just handed."""
        start = max(after, self._acked_upto)
        (newest,) = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()
        recent = self._recent.after(start, limit, newest)
        if recent is not None:
            return recent
        cur = self._db.execute(
            "SELECT id, topic, key, value FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (start, limit),
        )
        # The columns come back as the types they were written as (INTEGER, TEXT, BLOB): no
        # conversion per row (a drain reads thousands a second).
        return cast(list[Row], cur.fetchall())

    def ack(self, row_ids: Sequence[int], *, now: float | None = None) -> None:
        """Remove rows the broker acknowledged, in one transaction.

        When they are the oldest rows of the queue with consecutive ids (a drain's batch, nearly
        always), the removal is a watermark: ``acked_upto`` in ``meta`` moves past them and
        every query reads only the rows above it. Deleting the rows costs 4-5 µs each, a fifth
        of a drain's time on its event loop; `compact` does it later, when the drain is idle
        (or the acknowledged rows pass a quarter of ``max_bytes``). Other sets of rows are
        deleted at once.

        The removal is committed without its own fsync (``synchronous=NORMAL`` for this
        transaction only): a removal lost to a power cut brings rows back that the broker has,
        and they are sent again with the same ``event_id`` (consumers dedupe on it), while an
        fsync per batch held the drain's event loop for 20-100 ms on a busy disk. The next
        append's full fsync makes the removal durable too; appends keep ``synchronous=FULL``.
        """
        ids = _new_ids(row_ids, self._acked_upto)
        if not ids:
            return
        db, acked, last = self._db, self._acked_upto, self._last_seq
        # The oldest rows, kept in memory (a drain's batch just appended): their count and
        # bytes are known, the watermark moves without a query.
        kept = self._recent.oldest(acked, ids) if ids[-1] - ids[0] + 1 == len(ids) else None
        try:
            if kept is not None:
                unsynced(db, lambda: move_watermark(db, ids[-1]))
                count, size, upto = len(ids), kept, ids[-1]
            else:
                count, size, upto = unsynced(
                    db, lambda: remove_acknowledged(db, ids, upto=acked, last_seq=last))
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: cannot remove acknowledged rows ({exc})") from exc
        self._depth -= count
        self._bytes -= size
        if upto == self._acked_upto:  # deleted at once, out of order
            self._recent.forget()
        else:
            self._recent.drop_upto(upto, kept)
        if upto > self._acked_upto:
            self._acked_upto, self._dead, self._dead_bytes = (
                upto, self._dead + count, self._dead_bytes + size)
            if self._dead_bytes > self.max_bytes // 4:  # bound the file: not all at idle
                self.compact()
        self._refresh_gauges(time.time() if now is None else now)

    def compact(self, limit: int = 5_000) -> int:
        """Delete up to ``limit`` acknowledged rows (below the watermark) for good; returns
        how many. The publisher calls it when the drain is idle, a chunk at a time so the
        agent's loop is never held long. When no row is left in the queue (the agent's drain
        keeps up: nearly always), up to `TRUNCATE_MAX` go at once by a ``DELETE`` without a
        condition, which SQLite runs page by page (its truncate optimization: half the CPU of
        deleting a hundred rows one by one)."""
        if not self._dead:
            return 0
        everything = not self._depth and self._dead <= TRUNCATE_MAX
        whole = (self._dead, self._dead_bytes) if everything else None
        db, upto, last = self._db, self._acked_upto, self._last_seq
        try:
            count, size = unsynced(db, lambda: delete_acknowledged(
                db, upto=upto, last_seq=last, limit=limit, everything=whole))
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: cannot remove acknowledged rows ({exc})") from exc
        self._dead -= count
        self._dead_bytes -= size
        return count

    def acknowledged_rows(self) -> int:
        """Rows acknowledged (out of the queue) but not yet deleted by `compact`."""
        return self._dead

    def _count(self, where: str) -> tuple[int, int]:
        count, size = self._db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM events WHERE {where}"
        ).fetchone()
        return int(count), int(size)

    def quarantine(self, row_id: int, reason: str, *, now: float | None = None) -> int | None:
        """Move a row the broker refuses for good out of the queue, keeping it with ``reason``;
        one transaction. Returns its ``seq`` (None if the row was already gone)."""
        now = time.time() if now is None else now
        try:
            moved = move_to_quarantine(
                self._db, row_id, reason, acked_upto=self._acked_upto, now=now)
        except sqlite3.Error as exc:
            self._rollback()
            raise SpoolError(f"spool {self.path}: cannot quarantine row {row_id} ({exc})") from exc
        if moved is None:
            return None
        self._recent.forget()
        seq, size = moved
        self._depth -= 1
        self._bytes -= size
        self._quarantined += 1
        SPOOL_QUARANTINED_TOTAL.labels(reason=reason.split(":", 1)[0]).inc()
        self._refresh_gauges(now)
        return seq

    def quarantined(self) -> int:
        """How many rows are in quarantine."""
        return self._quarantined

    def quarantined_rows(self, limit: int = 1000) -> list[QuarantinedRow]:
        """The quarantined rows, oldest first: ``(id, seq, topic, size, quarantined_at,
        reason)``."""
        return list_quarantined(self._db, limit)

    def requeue_quarantined(self) -> int:
        """Put every quarantined row back at the end of the queue (once its cause is fixed:
        a larger broker limit, say). Returns how many; same bytes, same seq."""
        try:
            count, size = requeue_all(self._db)
        except sqlite3.Error as exc:
            self._rollback()
            raise SpoolError(f"spool {self.path}: cannot requeue ({exc})") from exc
        self._recent.forget()
        self._depth += count
        self._bytes += size
        self._quarantined = 0
        self._refresh_gauges(time.time())
        return count

    def depth(self) -> int:
        return self._depth

    def size_bytes(self) -> int:
        return self._bytes

    def oldest_age_s(self, now: float) -> float | None:
        """Seconds the oldest unacknowledged event has waited, or None when the spool is empty."""
        row = self._db.execute(
            "SELECT appended_at FROM events WHERE id > ? ORDER BY id LIMIT 1", (self._acked_upto,)
        ).fetchone()
        return None if row is None else max(0.0, now - float(row[0]))

    def last_seq(self) -> int:
        """The last ``seq`` handed out (0 before the first event); survives restarts."""
        return self._last_seq

    def refresh_gauges(self, now: float) -> None:
        """Update the depth/bytes/age gauges; the publisher calls it on its poll tick."""
        self._refresh_gauges(now)

    def _refresh_gauges(self, now: float) -> None:
        SPOOL_DEPTH.set(self._depth)
        SPOOL_BYTES.set(self._bytes)
        SPOOL_OLDEST_AGE.set(self.oldest_age_s(now) or 0.0)
        SPOOL_QUARANTINED.set(self._quarantined)

    def close(self) -> None:
        """Close the file; the last ``seq`` goes to ``meta`` first, where an earlier version
        (after a downgrade) reads it. This one does not need it there (`stored_last_seq`):
        a failure to write it does not stop the close."""
        with contextlib.suppress(sqlite3.Error):
            keep_last_seq(self._db, self._last_seq)
        self._db.close()


def _new_ids(row_ids: Sequence[int], acked_upto: int) -> list[int]:
    """The ids above the watermark, sorted, once each; a drain's batch (ascending consecutive
    ids, all above it) is checked as a whole, not id by id."""
    ids = list(row_ids)
    if ids and ids[0] > acked_upto and ids == list(range(ids[0], ids[0] + len(ids))):
        return ids
    return sorted({int(i) for i in ids if int(i) > acked_upto})
