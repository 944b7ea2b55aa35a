"""The SIEM relay: alerts from the alerts topic to a syslog collector, as CEF.

It reads ``topics.alerts`` in its own consumer group (``siem.group_id``), reads each message
in whichever format the classifier wrote (`detectors.alert_formats.read_alert`), turns it into
a CEF line in an RFC 5424 message within ``siem.max_message_bytes``, sends the batch to the
collector (`SyslogSink.deliver`) and commits the batch's offsets only after the collector took
it: at-least-once, a restart or a collector outage sends a batch again rather than lose it.
While the collector is away nothing is committed and nothing more is read: the topic is the
queue, and at most ``siem.batch_size`` alerts are in hand. A message that is no alert goes to
the dead-letter topic with the reason (`detectors.messages.DeadLetters`) and is skipped.

The classifier never waits on the SIEM: its alerts are durable on Kafka before this relay
reads them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from agent.kafka.settings import KafkaSettings
from agent.kafka.startup import start_with_retry
from agent.kafka.topics import ensure_topics
from agent.runtime.cancel import raise_if_cancel_swallowed
from detectors import health
from detectors.alert_formats import Alert, UnreadableAlert, fit_cef, read_alert
from detectors.alert_formats.syslog import SyslogHeader, frame
from detectors.config import ClassifierConfig, SiemSection
from detectors.messages import DeadLetters
from detectors.siem import metrics
from detectors.siem.sink import SyslogSink

log = logging.getLogger("detectors.siem")

#: How the relay names itself to the broker unless ``kafka.client_id`` names another process.
CLIENT_ID = "otwatch-siem"


def syslog_frame(alert: Alert, header: SyslogHeader, max_bytes: int) -> bytes:
    """One alert as an octet-counted RFC 5424 message carrying its CEF line."""
    severity = str(alert.get("severity"))
    try:
        time: datetime | None = datetime.fromisoformat(str(alert.get("time")))
    except ValueError:
        time = None
    message = fit_cef(alert, max_bytes,
                      lambda cef: header.message(cef, severity=severity, time=time))
    return frame(message)


def header_for(siem: SiemSection) -> SyslogHeader:
    return SyslogHeader(hostname=siem.hostname or socket.gethostname(),
                        facility=siem.facility, app_name=siem.app_name)


def relay_kafka(kafka: KafkaSettings) -> KafkaSettings:
    """The classifier's Kafka settings, under the relay's own client id."""
    named = kafka.client_id
    own = CLIENT_ID if named in (None, "otwatch-classifier") else f"{named}-siem"
    return kafka.model_copy(update={"client_id": own})


class SiemRelay:
    """Forwards alerts until ``stop`` is set; `await run(stop)`."""

    def __init__(
        self, config: ClassifierConfig, sink: SyslogSink, *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.sink = sink
        self.kafka = relay_kafka(config.kafka)
        self.header = header_for(config.siem)
        self.clock = clock
        #: Alerts the collector took, since start (for tests and the log).
        self.forwarded = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Start the consumer and the dead-letter producer (waiting for the broker), relay
        until ``stop``, then close both and the collector connection."""
        kafka, topics = self.kafka, self.config.topics
        producer = await start_with_retry(
            lambda: AIOKafkaProducer(**kafka.producer_kwargs()), kafka, "dlq producer", stop)
        if producer is None:
            return
        try:
            await ensure_topics(kafka, [topics.alerts, topics.dlq])
            await self._consume(producer, stop)
        finally:
            await self.sink.close()
            await producer.stop()

    async def _consume(self, producer: AIOKafkaProducer, stop: asyncio.Event) -> None:
        kafka, siem = self.kafka, self.config.siem
        consumer = await start_with_retry(lambda: AIOKafkaConsumer(
            self.config.topics.alerts, group_id=siem.group_id, enable_auto_commit=False,
            auto_offset_reset=siem.start_from, **kafka.consumer_kwargs(),
        ), kafka, "alerts consumer", stop)
        if consumer is None:
            return
        letters = DeadLetters(producer, self.config.topics.dlq, health.Status(None), self.clock)
        log.info("relaying %s to syslog collector %s", self.config.topics.alerts,
                 self.sink.collector)
        try:
            await self._relay(consumer, letters, stop)
        finally:
            await consumer.stop()

    async def _relay(
        self, consumer: AIOKafkaConsumer, letters: DeadLetters, stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            raise_if_cancel_swallowed()
            batches = await consumer.getmany(timeout_ms=500,
                                             max_records=self.config.siem.batch_size)
            if not batches:
                continue
            frames, unreadable, offsets = self._frames(batches)
            await letters.send(unreadable)
            if frames and not await self.sink.deliver(frames, stop):
                return  # stopped before the collector took the batch: read again next start
            self.forwarded += len(frames)
            metrics.FORWARDED.inc(len(frames))
            await _commit(consumer, offsets)

    def _frames(
        self, batches: dict[TopicPartition, list[Any]]
    ) -> tuple[list[bytes], list[tuple[Any, str]], dict[TopicPartition, int]]:
        frames: list[bytes] = []
        unreadable: list[tuple[Any, str]] = []
        offsets: dict[TopicPartition, int] = {}
        max_bytes = self.config.siem.max_message_bytes
        for tp, messages in batches.items():
            for msg in messages:
                try:
                    frames.append(syslog_frame(read_alert(msg.value), self.header, max_bytes))
                except UnreadableAlert as exc:
                    metrics.UNREADABLE.inc()
                    unreadable.append((msg, f"not an alert: {exc}"))
            if messages:
                offsets[tp] = messages[-1].offset + 1
        return frames, unreadable, offsets


async def _commit(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
    """Commit; a commit the group refuses (partitions moved meanwhile) is only logged: the
    next owner reads those alerts again and sends them once more (at-least-once)."""
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, IllegalStateError, KafkaError) as exc:
        log.warning("offsets not committed (%s: %s); those alerts will be sent again",
                    type(exc).__name__, exc)
