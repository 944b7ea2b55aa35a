"""The classifier service: consume suspect changes, correlate, classify, record, alert, commit.

Exactly-once effect under at-least-once delivery: the records store dedupes on ``event_id``
inside the same transaction that opens or updates the record, and a Kafka offset is committed
only after that transaction has committed and the batch's alerts and record events are
acknowledged. A crash in between makes Kafka deliver the batch again; the store recognises
every event and changes nothing. Alerts and record events are at-least-once too; each carries
the stable event id to dedupe on.

This module only wires the parts together; each lives in its own module:

- `detectors.suspects`: the group consumer of the suspect topic (bursts, commits);
- `detectors.offsets`: which offsets may be committed, when (pure);
- `detectors.messages`: parsing what is read, dead letters;
- `detectors.recorder`: classify, record in one transaction, send alerts and record events;
- `detectors.integrity_reader`: the group-less reader behind the integrity findings;
- `detectors.checkpoint_publisher`: signed checkpoints of the trail head, to the database and
  ``otwatch.checkpoints`` (when a checkpoint key is configured);
- `agent.kafka`: client start-up with retry, batching, the cancel-aware read loop.

Example::

    >>> classifier = Classifier(config, criteria, RetryingStore(config.classifier.records_db))
    >>> await classifier.run()          # until classifier.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from agent.kafka.client_logs import demote_kafka_client_logs
from agent.kafka.startup import start_with_retry
from agent.kafka.topics import ensure_topics
from agent.runtime.gc_tuning import CLASSIFIER_THRESHOLDS, tune_for_throughput
from agent.runtime.tasks import OwnedTasks
from detectors import health
from detectors.alert_formats import encoder_for
from detectors.checkpoint_publisher import CheckpointPublisher, load_signer
from detectors.config import ClassifierConfig
from detectors.criteria import Criteria
from detectors.integrity_reader import IntegrityReader
from detectors.liveness import ConsumerProgress
from detectors.messages import DeadLetters
from detectors.recorder import Recorder
from detectors.signatures import TrustedAgents, load_agent_keys
from detectors.store_retry import RetryingStore
from detectors.suspects import SuspectConsumer

log = logging.getLogger(__name__)

#: How long a stop waits for the readers to finish their batch and close.
STOP_TIMEOUT_S = 15.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Classifier:
    """One classifier process in the consumer group; `await run()` until `stop()`.

    ``after_record`` is called right after every records transaction, before the batch's
    messages are sent and its offsets committed (a test ends the process there).
    """

    def __init__(
        self, config: ClassifierConfig, criteria: Criteria, store: RetryingStore,
        *, clock: Callable[[], datetime] = _utcnow, after_record: Callable[[], None] | None = None,
        trusted: TrustedAgents | None = None, progress: ConsumerProgress | None = None,
    ) -> None:
        self.config = config
        self.progress = progress
        section = config.classifier
        self.trusted = trusted or TrustedAgents(
            load_agent_keys(section), require_signed=section.require_signed_events
        )
        self.criteria = criteria
        self.store = store
        self.clock = clock
        self.after_record = after_record
        self.status = health.Status(config.classifier.status_file)
        self._stop = asyncio.Event()

    @property
    def processed(self) -> int:
        return self.status.processed

    def stop(self) -> None:
        if not self._stop.is_set():
            log.info("stopping: finishing the batch in hand, then closing")
        self._stop.set()

    async def run(self) -> None:
        """Start the producer and both readers; run until `stop()` or until a reader fails."""
        demote_kafka_client_logs()
        signer = load_signer(self.config.checkpoints)  # a bad key stops the start, named
        if not await self.store.open(self._stop):
            return
        tune_for_throughput(CLASSIFIER_THRESHOLDS)
        kafka, topics = self.config.kafka, self.config.topics
        producer = await start_with_retry(
            lambda: AIOKafkaProducer(**kafka.producer_kwargs()), kafka, "producer", self._stop
        )
        if producer is None:
            return
        tasks = OwnedTasks("classifier", log=log, on_crash=lambda _task, _exc: self.stop())
        recorder: Recorder | None = None
        try:
            await ensure_topics(kafka, [
                topics.suspect, topics.authorized, topics.heartbeat, topics.alerts,
                topics.records, topics.dlq,
            ])
            dead_letters = DeadLetters(producer, topics.dlq, self.status, self.clock)
            recorder = Recorder(
                producer, topics, self.criteria, self.store, self.status, self.clock,
                after_record=self.after_record, dead_letters=dead_letters,
                alert_encoder=encoder_for(self.config.alerts.format),
            )
            suspects = SuspectConsumer(
                self.config, self.criteria.burst, recorder, dead_letters, self.trusted,
                self.status, self.clock, self.progress,
            )
            tasks.start(suspects.run(self._stop), "otwatch-classify")
            if self.config.integrity.enabled:
                reader = IntegrityReader(
                    self.config, recorder, self.trusted, self.status, self.clock
                )
                tasks.start(reader.run(self._stop), "otwatch-watch")
            if signer is not None:
                checkpoints = CheckpointPublisher(self.config, signer, clock=self.clock)
                tasks.start(checkpoints.run(self._stop), "otwatch-checkpoints")
            await self._stop.wait()
        finally:
            await tasks.stop(STOP_TIMEOUT_S)
            if recorder is not None:  # its kept-back batches are abandoned, not handed over
                with contextlib.suppress(Exception):
                    await recorder.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 10)
        if tasks.failure is not None:
            raise tasks.failure
