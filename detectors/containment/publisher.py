"""The containment publisher: a trail relay whose sink is a Kafka producer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from agent.kafka.client_logs import demote_kafka_client_logs
from agent.kafka.settings import KafkaSettings, TopicNames
from agent.kafka.startup import start_with_retry
from agent.kafka.topics import ensure_topics
from agent.runtime.tasks import log_task_crash
from detectors.containment import metrics
from detectors.containment.lots import containment_messages
from detectors.records import Outgoing, RecordStore, TrailCursor, TrailRelay
from detectors.records.relay import RelayStatus

log = logging.getLogger("detectors.containment")

DEFAULT_TOPIC = TopicNames().containment


class KafkaSink:
    """Sends relay messages to one topic; `send` returns once the broker acknowledged all."""

    failures: tuple[type[BaseException], ...] = (KafkaError,)

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self.kafka = kafka
        self.topic = topic
        self._producer: AIOKafkaProducer | None = None

    async def open(self, stop: asyncio.Event) -> bool:
        """A started producer, retrying quietly while the broker is away; False on stop."""
        demote_kafka_client_logs()
        producer = await start_with_retry(
            lambda: AIOKafkaProducer(**self.kafka.producer_kwargs()), self.kafka,
            "containment producer", stop,
        )
        if producer is None:
            return False
        self._producer = producer
        await ensure_topics(self.kafka, [self.topic])
        return True

    async def send(self, messages: Sequence[Outgoing]) -> None:
        assert self._producer is not None, "KafkaSink.send before open"
        sends = []
        for item in messages:
            body = item.value
            log.info("containment: %s %s %s (record %s, trail seq %d)", body["action"],
                     body["controller"], body["lot"], body["record_id"], body["trail_seq"])
            sends.append(await self._producer.send(self.topic, orjson.dumps(body), key=item.key))
        acks = await asyncio.gather(*sends, return_exceptions=True)
        failed = [a for a in acks if isinstance(a, BaseException)]
        if failed:
            raise failed[0]
        for item in messages:
            metrics.MESSAGES.labels(str(item.value["action"])).inc()

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()


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
        self.relay = TrailRelay(store, cursor, containment_messages, KafkaSink(kafka, topic),
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
