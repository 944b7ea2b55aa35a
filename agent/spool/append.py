"""The rows of an append: each event numbered, signed, routed and written in one transaction.

Signing. With a ``signer`` (the agent's `agent.contract.signing.EventSigner`), the events of
an append are signed as they are stored, once their ``seq`` is known: one signature over the
Merkle root of the batch, each event with its proof (`EventSigner.sign_batch`); each row holds
the exact bytes the classifier verifies, on their own.

The bounds, the refusal when full and the running counts are the `agent.spool.store.Spool`'s;
this module only writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from agent.contract import SuspectChange, Verdict
from agent.contract.signing import EventSigner
from agent.kafka.settings import TopicNames
from agent.spool.journal import BaselineMove
from agent.spool.recent import Row

#: A message that is not an event, stored ahead of the events of an append: (topic, key, value).
#: The agent's record of a single-use approval's use is one (`agent.approvals.uses`).
AheadRow = tuple[str, bytes, bytes]


def topic_for(event: SuspectChange, topics: TopicNames) -> str:
    """Approved changes go to the audit-trail topic, every other verdict to the suspect topic."""
    return topics.authorized if event.verdict == Verdict.AUTHORIZED else topics.suspect


def insert_events(
    db: sqlite3.Connection, events: Sequence[SuspectChange], *, last_seq: int, now: float,
    topics: TopicNames, signer: EventSigner | None, baseline: Sequence[BaselineMove] = (),
    ahead: Sequence[AheadRow] = (), numbered: bool = True,
) -> tuple[list[SuspectChange], int, list[Row]]:
    """Write ``ahead`` (``seq`` 0), then ``events`` numbered on from ``last_seq``, then the
    ``baseline`` moves, in one committed transaction; returns the numbered events (none when
    signed and not ``numbered``: no copy is made), the bytes added and the rows written, as
    `Spool.peek` would read them (`agent.spool.recent`). A failure leaves the transaction
    open for the caller to roll back."""
    db.execute("BEGIN IMMEDIATE")
    stored: list[SuspectChange] = []
    rows = [(0, topic, key, value, len(key) + len(value), now) for topic, key, value in ahead]
    added = sum(row[4] for row in rows)
    if signer is not None and not numbered:
        messages = signer.batch_messages(events, first_seq=last_seq + 1)
    elif signer is not None:
        stored, messages = _unzip(signer.sign_batch(events, first_seq=last_seq + 1))
    else:
        stored = [e.model_copy(update={"seq": last_seq + i}) for i, e in enumerate(events, 1)]
        messages = [ev.to_json() for ev in stored]
    for seq, ev, value in zip(range(last_seq + 1, last_seq + 1 + len(events)), events, messages,
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
    # One writer, AUTOINCREMENT: the rows of one statement have consecutive ids.
    (last_id,) = db.execute("SELECT last_insert_rowid()").fetchone()
    queued = [(row_id, topic, key, value) for row_id, (_seq, topic, key, value, _size, _at)
              in zip(range(last_id - len(rows) + 1, last_id + 1), rows, strict=True)]
    if baseline:
        db.executemany(
            "INSERT INTO baseline_moves (controller, readings) VALUES (?, ?)", baseline
        )
    db.execute("COMMIT")
    return stored, added, queued


def _unzip(
    signed: list[tuple[SuspectChange, bytes]]
) -> tuple[list[SuspectChange], list[bytes]]:
    return [ev for ev, _ in signed], [raw for _, raw in signed]
