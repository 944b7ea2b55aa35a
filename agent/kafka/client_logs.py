"""aiokafka's per-attempt connection errors go to DEBUG: the outage is ours to report, once.

aiokafka logs an ERROR for every failed reconnect; a process whose broker is away for an hour
would log thousands. Our own code logs each outage once with what it means (events wait in
the spool, the classifier retries its start) through `agent.runtime.outage.OutageLog`.
"""

from __future__ import annotations

import logging

#: The aiokafka loggers that report connection attempts.
KAFKA_CLIENT_LOGGERS = (
    "aiokafka",
    "aiokafka.conn",
    "aiokafka.client",
    "aiokafka.cluster",
    "aiokafka.producer.sender",
    "aiokafka.producer.producer",
    "aiokafka.admin.client",
)


class _DemoteToDebug(logging.Filter):
    """Rewrite a record's level to DEBUG so handlers at INFO and above drop it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


_DEMOTE = _DemoteToDebug()


def demote_kafka_client_logs() -> None:
    """Keep aiokafka's connection errors out of the process's log (at DEBUG instead). Idempotent."""
    for name in KAFKA_CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        if _DEMOTE not in logger.filters:
            logger.addFilter(_DEMOTE)
