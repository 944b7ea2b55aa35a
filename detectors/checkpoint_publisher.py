"""The checkpoint publisher: signs the audit trail's head every N entries or M minutes, stores
the checkpoint in the records database and publishes it to Kafka (``otwatch.checkpoints``), so
that a copy lives where whoever can write to the database cannot reach it.

It runs inside the classifier (`detectors.service`) when ``checkpoints.key_file`` (or
``$OTWATCH_CHECKPOINT_KEY``) names a key; it covers every writer of the trail (classifier,
records service, CLI), because it signs the head, whoever wrote it. Publication is at least
once: a cursor (``relay_cursor`` row ``otwatch.checkpoints``) says which checkpoints the broker
acknowledged, so a broker outage delays the copy and loses nothing. On stop it signs the head
one last time.

`read_topic` reads every checkpoint back from the topic, for `otwatch-records verify
--checkpoints-from kafka` and `checkpoints export`.

Example::

    >>> publisher = CheckpointPublisher(config, signer)
    >>> await publisher.run(stop)          # until stop is set
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from agent.kafka.settings import KafkaSettings
from agent.kafka.startup import start_with_retry
from agent.kafka.topics import ensure_topics
from detectors.config import CheckpointsSection, ClassifierConfig
from detectors.records import RecordsError, TrailCursor
from detectors.records.checkpoints import (
    ENV_KEY_FILE,
    Checkpoint,
    CheckpointSigner,
    checkpoint_if_due,
    read_checkpoints,
)
from detectors.records.db import Database, connect

log = logging.getLogger("detectors.checkpoints")
CURSOR = "otwatch.checkpoints"


def key_file(section: CheckpointsSection, env: dict[str, str] | None = None) -> Path | None:
    """The private key file: ``$OTWATCH_CHECKPOINT_KEY``, else ``checkpoints.key_file``."""
    named = (env if env is not None else os.environ).get(ENV_KEY_FILE)
    return Path(named) if named else section.key_file


def load_signer(section: CheckpointsSection, env: dict[str, str] | None = None
                ) -> CheckpointSigner | None:
    """The signer when checkpointing is configured (None: it is not); a bad key raises
    `CheckpointKeyError` naming the file and the fix."""
    path = key_file(section, env)
    return None if path is None else CheckpointSigner.from_file(path)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class CheckpointPublisher:
    """Makes and publishes checkpoints until stopped; one per classifier process is enough
    (two make no harm: the head is signed under the trail lock, and the cursor only moves
    forward)."""

    def __init__(self, config: ClassifierConfig, signer: CheckpointSigner, *,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.section = config.checkpoints
        self.kafka = config.kafka
        self.target = config.classifier.records_db
        self.signer = signer
        self.clock = clock
        self.published = 0
        self._failing = False

    async def run(self, stop: asyncio.Event) -> None:
        producer = await start_with_retry(
            lambda: AIOKafkaProducer(**self.kafka.producer_kwargs()), self.kafka,
            "checkpoint producer", stop)
        if producer is None:
            return
        db: Database | None = None
        try:
            await ensure_topics(self.kafka, [self.section.topic])
            db = connect(self.target)
            cursor = TrailCursor(db, CURSOR)
            while not stop.is_set():
                await self._pass(db, cursor, producer, force=False)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.section.check_interval_s)
            await self._pass(db, cursor, producer, force=True)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 10)
            if db is not None:
                db.close()

    async def _pass(self, db: Database, cursor: TrailCursor, producer: AIOKafkaProducer, *,
                    force: bool) -> None:
        """Sign the head if due, then publish what the broker has not acknowledged yet; an
        outage is logged once and retried on the next pass."""
        try:
            made = checkpoint_if_due(db, self.signer, self.section.interval(), now=self.clock(),
                                     force=force)
            if made is not None:
                log.info("checkpoint: trail entry %d signed (key %s)", made.seq, made.key_id)
            await self._publish(db, cursor, producer)
        except (RecordsError, KafkaError) as exc:
            if not self._failing:
                log.error("checkpoints: cannot sign or publish (%s); retrying", exc)
            self._failing = True
            return
        if self._failing:
            log.info("checkpoints: signing and publishing again")
        self._failing = False

    async def _publish(self, db: Database, cursor: TrailCursor,
                       producer: AIOKafkaProducer) -> None:
        done = cursor.load()
        with db.read() as conn:
            pending = [c for c in read_checkpoints(conn) if c.seq > done]
        for checkpoint in pending:
            await producer.send_and_wait(self.section.topic,
                                         orjson.dumps(checkpoint.message()), key=b"checkpoint")
            cursor.save(checkpoint.seq, self.clock())
            self.published += 1


async def read_topic(kafka: KafkaSettings, topic: str, *, timeout_s: float = 30.0
                     ) -> list[Checkpoint]:
    """Every checkpoint on ``topic``, read from the beginning to the end (no consumer group);
    a message that is not a checkpoint is skipped with a warning."""
    consumer = AIOKafkaConsumer(**kafka.consumer_kwargs(), enable_auto_commit=False)
    await consumer.start()
    try:
        parts = await asyncio.wait_for(_partitions(consumer, topic), timeout_s)
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        found: list[Checkpoint] = []
        async with asyncio.timeout(timeout_s):
            while not await _at_end(consumer, ends):
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    found += _parsed(messages, topic)
        return sorted(set(found), key=lambda c: c.seq)
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    while True:
        numbers = consumer.partitions_for_topic(topic)
        if numbers:
            return [TopicPartition(topic, n) for n in sorted(numbers)]
        await consumer.force_metadata_update()
        await asyncio.sleep(0.2)


async def _at_end(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


def _parsed(messages: list[object], topic: str) -> list[Checkpoint]:
    out = []
    for message in messages:
        try:
            out.append(Checkpoint.from_message(orjson.loads(getattr(message, "value", b""))))
        except (orjson.JSONDecodeError, ValueError) as exc:
            log.warning("%s offset %s: skipped (%s)", topic, getattr(message, "offset", "?"),
                        exc)
    return out
