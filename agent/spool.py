"""The agent's durable spool: every event is on disk before it counts as detected.

A SQLite database in WAL mode with ``synchronous=FULL``: when :meth:`Spool.append` returns, the
events, each with its ``seq``, are committed and survive power loss (the last ``seq`` is the
largest stored; see `Spool._stored_last_seq`). The
publisher (``agent.publisher``) reads the oldest rows with :meth:`Spool.peek` and removes only
what the broker acknowledged with :meth:`Spool.ack`; a crash in between means a resend of the
same bytes (same ``event_id``), never a loss. An acknowledged batch leaves the queue by a
watermark (``acked_upto``: every query reads only the rows above it); its rows are deleted for
good later by :meth:`Spool.compact`, which the publisher calls when the drain is idle.

Policy when full. The spool is bounded by ``max_events``, ``max_bytes`` and, optionally,
``max_age_s`` (the age of the oldest unpublished event). When an append would cross a bound, or
the disk under the spool is full, the *whole* append is refused with :class:`SpoolFull`: nothing
is written, no ``seq`` is consumed, nothing already spooled is dropped. The refusal is counted
(``otwatch_agent_spool_refused_total{reason}``) and logged once at ERROR per full episode (until
an append succeeds again). The caller must then treat the change as not detected (keep its
baseline unchanged so the change is found again, as a monitoring gap, once there is room).

Signing. With a ``signer`` (the agent's `agent.contract.signing.EventSigner`), the events of
an append are signed as they are stored, once their ``seq`` is known: one signature over the
Merkle root of the batch, each event with its proof (`EventSigner.sign_batch`); each row holds
the exact bytes the classifier verifies, on their own.

Quarantine. A row the broker refuses for good (too large, invalid: retrying cannot help) must
not hold back the rows behind it. The publisher moves it with :meth:`Spool.quarantine` into
the ``quarantine`` table of the same database, with the reason, in one transaction: it is
kept (nothing is lost; ``otwatch-agent spool show`` lists it, ``spool requeue`` puts it back
in the queue once the cause is fixed), counted (``otwatch_agent_spool_quarantined_total``,
gauge ``otwatch_agent_spool_quarantine_events``) and reported in the heartbeat.

Exceptions: :class:`SpoolError` (the spool database failed) and its subclass :class:`SpoolFull`
belong to the delivery tree rooted at ``agent.kafka.errors.DeliveryError``.

Example::

    >>> spool = Spool(Path("/var/lib/otwatch/spool.db"), topics=TopicNames())
    >>> stored = spool.append([event])          # durable now; stored[0].seq is assigned
    >>> rows = spool.peek(500)                  # [(row_id, topic, key, value), ...]
    >>> spool.ack([row_id for row_id, *_ in rows])
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar, cast

from prometheus_client import Counter, Gauge

from agent.contract import SuspectChange, Verdict
from agent.contract.signing import EventSigner
from agent.kafka.settings import TopicNames
from agent.spool_db import SpoolError, open_spool_db
from agent.spool_db import SpoolFull as SpoolFull  # its callers import it from here

log = logging.getLogger(__name__)

SPOOL_DEPTH = Gauge("otwatch_agent_spool_depth", "Events in the spool, not yet acknowledged")
SPOOL_BYTES = Gauge("otwatch_agent_spool_bytes", "Bytes of event keys and values in the spool")
SPOOL_OLDEST_AGE = Gauge(
    "otwatch_agent_spool_oldest_age_seconds", "Age of the oldest unacknowledged event (0: empty)"
)
SPOOL_APPENDED = Counter("otwatch_agent_spool_appended_total", "Events written to the spool")
SPOOL_REFUSED = Counter(
    "otwatch_agent_spool_refused_total",
    "Events refused because the spool was full (reason: events, bytes, age, disk)",
    ["reason"],
)
SPOOL_QUARANTINED = Gauge(
    "otwatch_agent_spool_quarantine_events",
    "Events in the spool's quarantine now: refused by the broker for good, kept, not sent",
)
SPOOL_QUARANTINED_TOTAL = Counter(
    "otwatch_agent_spool_quarantined_total",
    "Events moved to the spool's quarantine, by the broker's reason (error name)",
    ["reason"],
)


_T = TypeVar("_T")
#: `Spool.compact` deletes at most this many acknowledged rows in one go when no other is left.
TRUNCATE_MAX = 50_000
Row = tuple[int, str, bytes, bytes]
#: A message that is not an event, stored ahead of the events of an append: (topic, key, value).
#: The agent's record of a single-use approval's use is one (`agent.approvals.uses`).
AheadRow = tuple[str, bytes, bytes]
#: A quarantined row as `Spool.quarantined_rows` lists it.
QuarantinedRow = tuple[int, int, str, int, float, str]
#: The baseline moves of one controller that go with the events of an append: (controller,
#: JSON object of tag name to reading, as `agent.baseline.encode_tags` writes it).
BaselineMove = tuple[str, str]


def topic_for(event: SuspectChange, topics: TopicNames) -> str:
    """Approved changes go to the audit-trail topic, every other verdict to the suspect topic."""
    return topics.authorized if event.verdict == Verdict.AUTHORIZED else topics.suspect


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
        self._last_seq = self._stored_last_seq()
        self._legacy_journal = bool(
            self._db.execute("SELECT 1 FROM baseline_journal LIMIT 1").fetchone())
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
        ahead: Sequence[AheadRow] = (), numbered: bool = True,
    ) -> tuple[list[SuspectChange], int]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        last = self._last_seq
        stored: list[SuspectChange] = []
        rows = [(0, topic, key, value, len(key) + len(value), now) for topic, key, value in ahead]
        added = sum(row[4] for row in rows)
        if self.signer is not None and not numbered:
            messages = self.signer.batch_messages(events, first_seq=last + 1)
        elif self.signer is not None:
            stored, messages = _unzip(self.signer.sign_batch(events, first_seq=last + 1))
        else:
            stored = [e.model_copy(update={"seq": last + i}) for i, e in enumerate(events, 1)]
            messages = [ev.to_json() for ev in stored]
        topics = self.topics
        for seq, ev, value in zip(range(last + 1, last + 1 + len(events)), events, messages,
                                  strict=True):
            key = ev.kafka_key()
            size = len(key) + len(value)
            added += size
            rows.append((seq, topic_for(ev, topics), key, value, size, now))
        db.executemany(
            "INSERT INTO events (seq, topic, key, value, size, appended_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        if baseline:
            db.executemany(
                "INSERT INTO baseline_moves (controller, readings) VALUES (?, ?)", baseline
            )
        db.execute("COMMIT")
        self._last_seq = last + len(events)
        return stored, added

    def baseline_journal(self) -> list[BaselineMove]:
        """The journalled baseline moves not yet in a snapshot, oldest first (the per-tag rows
        an earlier version left, each as a move of one tag, come first)."""
        db = self._db
        legacy = db.execute("SELECT controller, tag, reading FROM baseline_journal ORDER BY id")
        moves = [(str(c), f"{{{json.dumps(t)}: {r}}}") for c, t, r in legacy]
        cur = db.execute("SELECT controller, readings FROM baseline_moves ORDER BY id")
        return moves + [(str(c), str(r)) for c, r in cur]

    def baseline_journal_head(self) -> int:
        """A mark of the newest journalled move, for `trim_baseline_journal` (0: none)."""
        (head,) = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM baseline_moves").fetchone()
        return int(head)

    def trim_baseline_journal(self, upto: int) -> None:
        """Forget the moves up to the mark ``upto`` (and any per-tag rows of an earlier
        version): a baseline snapshot holding them is durable."""
        try:
            if upto:
                self._db.execute("DELETE FROM baseline_moves WHERE id <= ?", (upto,))
            if self._legacy_journal:
                self._db.execute("DELETE FROM baseline_journal")
                self._legacy_journal = False
        except sqlite3.Error as exc:
            raise SpoolError(
                f"spool {self.path}: cannot trim the baseline journal ({exc})"
            ) from exc

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
        ``(row_id, topic, key, value)``."""
        cur = self._db.execute(
            "SELECT id, topic, key, value FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (max(after, self._acked_upto), limit),
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
        ids = sorted({int(i) for i in row_ids if int(i) > self._acked_upto})
        if not ids:
            return
        try:
            count, size, upto = self._unsynced(lambda: self._remove(ids))
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: cannot remove acknowledged rows ({exc})") from exc
        self._depth -= count
        self._bytes -= size
        if upto > self._acked_upto:
            self._acked_upto, self._dead, self._dead_bytes = (
                upto, self._dead + count, self._dead_bytes + size)
            if self._dead_bytes > self.max_bytes // 4:  # bound the file: not all at idle
                self.compact()
        self._refresh_gauges(time.time() if now is None else now)

    def _remove(self, ids: list[int]) -> tuple[int, int, int]:
        """(rows, bytes, new watermark) of an ack inside its transaction."""
        db, upto = self._db, self._acked_upto
        if ids[-1] - ids[0] + 1 == len(ids) and not db.execute(
            "SELECT 1 FROM events WHERE id > ? AND id < ? LIMIT 1", (upto, ids[0])
        ).fetchone():  # the oldest rows: the watermark covers exactly them
            count, size = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM events WHERE id > ? AND id <= ?",
                (upto, ids[-1]),
            ).fetchone()
            db.execute("UPDATE meta SET value = ? WHERE name = 'acked_upto'", (ids[-1],))
            return int(count), int(size), ids[-1]
        self._keep_last_seq()
        sizes = db.execute(
            "DELETE FROM events WHERE id IN (SELECT value FROM json_each(?)) RETURNING size",
            (f"[{','.join(map(str, ids))}]",),
        ).fetchall()
        return len(sizes), sum(int(row[0]) for row in sizes), upto

    def _unsynced(self, work: Callable[[], _T]) -> _T:
        """Run ``work`` in a transaction committed without its own fsync (see `ack`)."""
        db = self._db
        db.execute("PRAGMA synchronous=NORMAL")
        try:
            db.execute("BEGIN IMMEDIATE")
            result = work()
            db.execute("COMMIT")
            return result
        finally:
            self._rollback()
            db.execute("PRAGMA synchronous=FULL")

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

        def delete() -> tuple[int, int]:
            db, upto = self._db, self._acked_upto
            self._keep_last_seq()
            if everything and not db.execute(
                "SELECT 1 FROM events WHERE id > ? LIMIT 1", (upto,)
            ).fetchone():  # checked in the transaction, not taken from the count
                db.execute("DELETE FROM events")
                return self._dead, self._dead_bytes
            sizes = db.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id <= ?"
                " ORDER BY id LIMIT ?) RETURNING size", (upto, limit),
            ).fetchall()
            return len(sizes), sum(int(row[0]) for row in sizes)

        try:
            count, size = self._unsynced(delete)
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
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT seq, size FROM events WHERE id = ? AND id > ?", (row_id, self._acked_upto)
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
        except sqlite3.Error as exc:
            self._rollback()
            raise SpoolError(f"spool {self.path}: cannot quarantine row {row_id} ({exc})") from exc
        if row is None:
            return None
        self._depth -= 1
        self._bytes -= int(row[1])
        self._quarantined += 1
        SPOOL_QUARANTINED_TOTAL.labels(reason=reason.split(":", 1)[0]).inc()
        self._refresh_gauges(now)
        return int(row[0])

    def quarantined(self) -> int:
        """How many rows are in quarantine."""
        return self._quarantined

    def quarantined_rows(self, limit: int = 1000) -> list[QuarantinedRow]:
        """The quarantined rows, oldest first: ``(id, seq, topic, size, quarantined_at,
        reason)``."""
        cur = self._db.execute(
            "SELECT id, seq, topic, size, quarantined_at, reason FROM quarantine"
            " ORDER BY id LIMIT ?",
            (limit,),
        )
        return [(int(a), int(b), str(c), int(d), float(e), str(f)) for a, b, c, d, e, f in cur]

    def requeue_quarantined(self) -> int:
        """Put every quarantined row back at the end of the queue (once its cause is fixed:
        a larger broker limit, say). Returns how many; same bytes, same seq."""
        db = self._db
        try:
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
        except sqlite3.Error as exc:
            self._rollback()
            raise SpoolError(f"spool {self.path}: cannot requeue ({exc})") from exc
        self._depth += int(count)
        self._bytes += int(size)
        self._quarantined = 0
        self._refresh_gauges(time.time())
        return int(count)

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

    def _stored_last_seq(self) -> int:
        """The last ``seq`` on disk. An append does not write it to ``meta`` (a statement and a
        row write per append, for a counter only this writer reads): it is the largest ``seq``
        of a row, which `compact` and `quarantine` (the only ones that remove rows for good)
        write to ``meta`` first; an earlier version wrote it there on every append."""
        (value,) = self._db.execute(
            "SELECT MAX((SELECT value FROM meta WHERE name = 'last_seq'),"
            " (SELECT COALESCE(MAX(seq), 0) FROM events),"
            " (SELECT COALESCE(MAX(seq), 0) FROM quarantine))"
        ).fetchone()
        return int(value)

    def _keep_last_seq(self) -> None:
        """Write the last ``seq`` to ``meta`` in the open transaction, before rows go. Never
        lower: another process (the spool CLI) may close the file with an older count."""
        self._db.execute(
            "UPDATE meta SET value = MAX(value, ?) WHERE name = 'last_seq'", (self._last_seq,))

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
        (after a downgrade) reads it. This one does not need it there (`_stored_last_seq`):
        a failure to write it does not stop the close."""
        with contextlib.suppress(sqlite3.Error):
            self._keep_last_seq()
        self._db.close()


def _unzip(
    signed: list[tuple[SuspectChange, bytes]]
) -> tuple[list[SuspectChange], list[bytes]]:
    return [ev for ev, _ in signed], [raw for _, raw in signed]
