"""The agent's durable spool: every event is on disk before it counts as detected.

A SQLite database in WAL mode with ``synchronous=FULL``: when :meth:`Spool.append` returns, the
events, each with its ``seq``, are committed and survive power loss (the last ``seq`` is the
largest stored; see `agent.spool.drain.stored_last_seq`). The
publisher (``agent.publisher``) reads the oldest rows with :meth:`Spool.peek` and removes only
what the broker acknowledged with :meth:`Spool.ack`; a crash in between means a resend of the
same bytes (same ``event_id``), never a loss. An acknowledged batch leaves the queue by a
watermark (``acked_upto``: every query reads only the rows above it); its rows are deleted for
good later by :meth:`Spool.compact`, which the publisher calls when the drain is idle.

When full (``max_events``, ``max_bytes``, ``max_age_s`` or the disk), the whole append is
refused with :class:`SpoolFull` and nothing is written or dropped (`agent.spool.store`). With a
signer, the events of an append are signed as they are stored (`agent.spool.append`). A row the
broker refuses for good goes to the quarantine, kept, not sent (`agent.spool.quarantine`).

Public surface (everything else is private to the package)::

    Spool                                  the spool of one agent (store.py)
    Row, AheadRow, BaselineMove,           the rows it takes and gives (store.py, append.py,
    QuarantinedRow                         journal.py, quarantine.py)
    topic_for(event, topics)               the topic an event goes to (append.py)
    TRUNCATE_MAX                           the most rows `Spool.compact` deletes at once

Exceptions: :class:`SpoolError` (the spool database failed) and its subclass :class:`SpoolFull`
belong to the delivery tree rooted at ``agent.kafka.errors.DeliveryError`` (``agent.spool_db``,
with the file's schema).

Example::

    >>> spool = Spool(Path("/var/lib/otwatch/spool.db"), topics=TopicNames())
    >>> stored = spool.append([event])          # durable now; stored[0].seq is assigned
    >>> rows = spool.peek(500)                  # [(row_id, topic, key, value), ...]
    >>> spool.ack([row_id for row_id, *_ in rows])
"""

from agent.spool.append import AheadRow, topic_for
from agent.spool.drain import TRUNCATE_MAX
from agent.spool.journal import BaselineMove
from agent.spool.quarantine import QuarantinedRow
from agent.spool.store import Row, Spool
from agent.spool_db import SpoolError, SpoolFull

__all__ = [
    "TRUNCATE_MAX",
    "AheadRow",
    "BaselineMove",
    "QuarantinedRow",
    "Row",
    "Spool",
    "SpoolError",
    "SpoolFull",
    "topic_for",
]
