"""The Kafka end of a trail relay (`detectors.records.TrailRelay`): one producer, one topic.

The containment publisher and the record-change publisher both send a relay's messages this
way; what differs between them (a log line per lot hold, a counter once acknowledged) is given
as hooks, so the producer's start, the acknowledgement wait and the failure types live once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from agent.kafka.client_logs import demote_kafka_client_logs
from agent.kafka.settings import KafkaSettings
from agent.kafka.startup import start_with_retry
from agent.kafka.topics import ensure_topics
from detectors.records import Outgoing


def _nothing(_: Sequence[Outgoing]) -> None:
    return None


class KafkaSink:
    """Sends relay messages to one topic; `send` returns once the broker acknowledged all.

    ``before_send`` sees each batch before it goes out (a log line), ``after_ack`` once the
    broker acknowledged all of it (a counter); ``name`` names the producer in log lines.
    """

    failures: tuple[type[BaseException], ...] = (KafkaError,)

    def __init__(self, kafka: KafkaSettings, topic: str, *, name: str = "relay producer",
                 before_send: Callable[[Sequence[Outgoing]], None] = _nothing,
                 after_ack: Callable[[Sequence[Outgoing]], None] = _nothing) -> None:
        self.kafka = kafka
        self.topic = topic
        self.name = name
        self._before_send = before_send
        self._after_ack = after_ack
        self._producer: AIOKafkaProducer | None = None

    async def open(self, stop: asyncio.Event) -> bool:
        """A started producer, retrying quietly while the broker is away; False on stop."""
        demote_kafka_client_logs()
        producer = await start_with_retry(
            lambda: AIOKafkaProducer(**self.kafka.producer_kwargs()), self.kafka, self.name, stop,
        )
        if producer is None:
            return False
        self._producer = producer
        await ensure_topics(self.kafka, [self.topic])
        return True

    async def send(self, messages: Sequence[Outgoing]) -> None:
        assert self._producer is not None, f"{self.name}: send before open"
        self._before_send(messages)
        sends = [await self._producer.send(self.topic, orjson.dumps(m.value), key=m.key)
                 for m in messages]
        acks = await asyncio.gather(*sends, return_exceptions=True)
        failed = [a for a in acks if isinstance(a, BaseException)]
        if failed:
            raise failed[0]
        self._after_ack(messages)

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()
