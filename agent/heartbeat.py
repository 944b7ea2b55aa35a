"""Heartbeats: so the classifier can tell a silent agent from a quiet plant.

Every ``interval_s`` the :class:`HeartbeatSender` builds a :class:`Heartbeat` (the caller's
``build`` callback reads the agent's live state) and sends it to ``otwatch.agents.heartbeat``,
keyed by ``agent_id``. Heartbeats bypass the spool on purpose: a stale heartbeat says nothing,
so one that cannot be sent is dropped and the next one tells the truth. ``spool_depth`` and
``last_seq`` let the classifier see a backlog and, with the events' ``seq``, a gap.

Example::

    >>> sender = HeartbeatSender(settings, "otwatch.agents.heartbeat", build, interval_s=10)
    >>> await sender.start(); ...; await sender.stop()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field

from agent.cancel import raise_if_cancel_swallowed
from agent.kafka_settings import KafkaSettings
from agent.publisher import (
    TRANSIENT,
    OutageLog,
    demote_kafka_client_logs,
    ensure_topics,
    log_task_crash,
    start_producer,
)

log = logging.getLogger(__name__)

HEARTBEAT_SCHEMA = "otwatch.heartbeat/1"

HEARTBEATS_SENT = Counter(
    "otwatch_agent_heartbeats_sent_total", "Heartbeats the broker acknowledged"
)


class Heartbeat(BaseModel):
    """One agent's liveness and backlog at ``sent_at`` (schema ``otwatch.heartbeat/1``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["otwatch.heartbeat/1"] = Field(default="otwatch.heartbeat/1", alias="schema")
    agent_id: str
    version: str
    #: Where the agent runs, so a silence finding names a site even before any event.
    site: str | None = None
    #: Set by the sender at send time when the builder leaves it empty.
    sent_at: datetime | None = None
    controllers_up: int = Field(ge=0)
    controllers_total: int = Field(ge=0)
    spool_depth: int = Field(ge=0)
    last_seq: int = Field(ge=0)

    def kafka_key(self) -> bytes:
        return self.agent_id.encode()

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


def stamped(beat: Heartbeat, now: datetime) -> Heartbeat:
    """The heartbeat with ``sent_at`` filled in (kept if the builder set it)."""
    return beat if beat.sent_at is not None else beat.model_copy(update={"sent_at": now})


class HeartbeatSender:
    """Owns one task that sends a heartbeat every ``interval_s`` seconds, first one at start."""

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        build: Callable[[], Heartbeat],
        interval_s: float = 10.0,
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.build = build
        self.interval_s = interval_s
        self.sent = 0
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        where = f"Kafka at {settings.bootstrap_servers}"
        self._outage = OutageLog(f"heartbeats to {where} fail", f"heartbeats to {where} resumed")

    async def start(self) -> None:
        """Start the task; raises only for unusable settings (KafkaSettingsError)."""
        if self._task is None:
            self._kwargs = self.settings.producer_kwargs()
            demote_kafka_client_logs()
            self._task = asyncio.create_task(self._run(), name="otwatch-heartbeat")
            self._task.add_done_callback(log_task_crash)

    async def stop(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - mirrors SpoolPublisher
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=timeout / 2)
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await asyncio.wait_for(producer.stop(), timeout=max(timeout / 2, 0.5))
            except TRANSIENT as exc:
                log.warning("heartbeat producer did not close within the stop timeout: %r", exc)

    async def _run(self) -> None:
        while True:
            raise_if_cancel_swallowed()
            try:
                await self.send_one()
                self._outage.success()
            except TRANSIENT as exc:
                self._outage.failure(f"{exc or type(exc).__name__}; heartbeat dropped")
            await asyncio.sleep(self.interval_s)

    async def send_one(self) -> None:
        """Build, stamp and send one heartbeat; wait for the broker's acknowledgement."""
        producer = await self._ensure_producer()
        beat = stamped(self.build(), datetime.now(UTC))
        timeout_s = self.settings.request_timeout_ms / 1000
        await asyncio.wait_for(
            producer.send_and_wait(self.topic, beat.to_json(), key=beat.kafka_key()), timeout_s
        )
        self.sent += 1
        HEARTBEATS_SENT.inc()

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            self._producer = await start_producer(self.settings, self._kwargs)
            await ensure_topics(self.settings, [self.topic])
        return self._producer
