"""The containment publisher: a trail relay whose sink is a Kafka producer."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from agent.kafka.settings import KafkaSettings, TopicNames
from agent.runtime.tasks import log_task_crash
from detectors.containment import metrics
from detectors.containment.lots import containment_messages
from detectors.records import Outgoing, RecordStore, TrailCursor, TrailRelay
from detectors.records.relay import RelayStatus
from detectors.relay_sink import KafkaSink

log = logging.getLogger("detectors.containment")

DEFAULT_TOPIC = TopicNames().containment


def _log_each(messages: Sequence[Outgoing]) -> None:
    for item in messages:
        body = item.value
        log.info("containment: %s %s %s (record %s, trail seq %d)", body["action"],
                 body["controller"], body["lot"], body["record_id"], body["trail_seq"])


def _count(messages: Sequence[Outgoing]) -> None:
    for item in messages:
        metrics.MESSAGES.labels(str(item.value["action"])).inc()


def containment_sink(kafka: KafkaSettings, topic: str) -> KafkaSink:
    """The relay's sink: each hold or release logged as it goes, counted once acknowledged."""
    return KafkaSink(kafka, topic, name="containment producer", before_send=_log_each,
                     after_ack=_count)


class ContainmentPublisher:
    """Follows the audit trail and publishes lot holds and releases; `start()` / `stop()`.

    The store is used from the event loop's thread only (like the classifier does); give the
    publisher its own `RecordStore` when another thread uses one.
    """

    def __init__(
        self, store: RecordStore, cursor: TrailCursor, kafka: KafkaSettings, *,
        topic: str = DEFAULT_TOPIC, interval_s: float = 1.0, batch: int = 500,
    ) -> None:
        self.topic = topic
        self.relay = TrailRelay(store, cursor, containment_messages, containment_sink(kafka, topic),
                                name="containment", interval_s=interval_s, batch=batch)
        metrics.CURSOR.set_function(lambda: self.relay.status.cursor)
        metrics.FAILING.set_function(lambda: float(self.relay.status.failing))

    @property
    def status(self) -> RelayStatus:
        return self.relay.status

    async def start(self) -> None:
        await self.relay.start(on_crash=log_task_crash)

    async def stop(self, timeout_s: float = 10.0) -> None:
        await self.relay.stop(timeout_s)

    async def wait(self) -> None:
        await self.relay.wait()
