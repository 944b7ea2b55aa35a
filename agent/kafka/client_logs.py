"""aiokafka's per-attempt connection errors go to DEBUG: the outage is ours to report, once.

aiokafka logs an ERROR for every failed reconnect; a process whose broker is away for an hour
would log thousands. Our own code logs each outage once with what it means (events wait in
the spool, the classifier retries its start) through `agent.runtime.outage.OutageLog`. The
demoted records are dropped by the handler filter `agent.runtime.logs.setup_logging` installs
(shown only with ``--log-level DEBUG``).
"""

from __future__ import annotations

import logging

from agent.runtime.logs import demote

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


def demote_kafka_client_logs() -> None:
    """Keep aiokafka's connection errors out of the process's log (at DEBUG instead). Idempotent."""
    for name in KAFKA_CLIENT_LOGGERS:
        demote(logging.getLogger(name))

#: The loggers of aiokafka's consumer: a reader that owns its outage log (the agent's topic
#: readers, `agent.approvals.topic`) demotes them too. Not part of the set above: a process
#: whose group consumer has no outage log of its own would lose its only word of an outage.
KAFKA_CONSUMER_LOGGERS = (
    "aiokafka.consumer",
    "aiokafka.consumer.consumer",
    "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator",
)


def demote_kafka_consumer_logs() -> None:
    """`demote_kafka_client_logs`, and the consumer's per-attempt errors too. Idempotent."""
    demote_kafka_client_logs()
    for name in KAFKA_CONSUMER_LOGGERS:
        demote(logging.getLogger(name))
