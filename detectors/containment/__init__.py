"""Lot holds and their release, from the audit trail to ``otwatch.containment`` for the MES.

Quality places a lot hold on a master record (the `PlaceHold` command, or an update of
``containment`` / ``containment.lot_holds``); the MES has to stop that lot. The publisher is a
trail relay (`detectors.records.TrailRelay`): it follows the audit trail from a cursor in the
records database (``relay_cursor``, named after the topic) and, for every trail entry that
changes a record's lot holds, sends one ``otwatch.containment/1`` message per lot held or
released (`detectors.containment.lots`), keyed by record id.

Delivery is at-least-once: the cursor moves only after the broker acknowledged every message of
the batch; a crash in between sends the batch again, and the MES dedupes on ``message_id``
(``<trail_seq>/<lot>/<action>``).

Example::

    >>> publisher = ContainmentPublisher(store, cursor, KafkaSettings(
    ...     bootstrap_servers="127.0.0.1:9092", enable_idempotence=False))
    >>> await publisher.start()
    >>> ...
    >>> await publisher.stop()

Run it with ``otwatch-containment`` or ``python -m detectors.containment`` (`containment_cli`).
"""

from detectors.containment.lots import (
    CONTAINMENT_FIELDS,
    SCHEMA,
    LotChange,
    containment_messages,
    lot_changes,
    message,
)
from detectors.containment.publisher import DEFAULT_TOPIC, ContainmentPublisher
from detectors.records import HEAD_REVISION, TrailCursor
from detectors.relay_sink import KafkaSink

#: The records schema version the publisher needs (the relay refuses an older database).
CURSOR_SCHEMA_VERSION = HEAD_REVISION

__all__ = [
    "CONTAINMENT_FIELDS",
    "CURSOR_SCHEMA_VERSION",
    "DEFAULT_TOPIC",
    "SCHEMA",
    "ContainmentPublisher",
    "KafkaSink",
    "LotChange",
    "TrailCursor",
    "containment_messages",
    "lot_changes",
    "message",
]
