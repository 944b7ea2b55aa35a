"""Heartbeats: so the classifier can tell a silent agent from a quiet plant.

Every ``interval_s`` the :class:`HeartbeatSender` builds a `Heartbeat` (the caller's ``build``
callback reads the agent's live state) and sends it to ``otwatch.agents.heartbeat``, keyed by
``agent_id``. Heartbeats bypass the spool on purpose: a stale heartbeat says nothing, so one
that cannot be sent is dropped and the next one tells the truth. ``spool_depth`` and
``last_seq`` let the classifier see a backlog and, with the events' ``seq``, a gap. The model
and its schema are the contract (`agent.contract.heartbeat`); this module is the agent's sender.

Example::

    >>> sender = HeartbeatSender(settings, "otwatch.agents.heartbeat", build, interval_s=10)
    >>> await sender.start(); ...; await sender.stop()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter

from agent.contract.heartbeat import Heartbeat
from agent.kafka.client_logs import demote_kafka_client_logs
from agent.kafka.settings import KafkaSettings
from agent.kafka.startup import TRANSIENT, start_client
from agent.kafka.topics import ensure_topics
from agent.publisher import PUBLISH_FAILURES
from agent.runtime.cancel import raise_if_cancel_swallowed
from agent.runtime.outage import OutageLog
from agent.runtime.tasks import log_task_crash

log = logging.getLogger(__name__)

HEARTBEATS_SENT = Counter(
    "otwatch_agent_heartbeats_sent_total", "Heartbeats the broker acknowledged"
)


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
        *,
        same_outage: Callable[[], bool] | None = None,
    ) -> None:
        self.settings = settings
        #: True while another part of the process already reports the broker's outage (the
        #: spool publisher): a heartbeat that fails then is logged at DEBUG only, so one outage
        #: is one line in the log.
        self.same_outage = same_outage
        self.topic = topic
        self.build = build
        self.interval_s = interval_s
        self.sent = 0
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        where = f"Kafka at {settings.bootstrap_servers}"
        self._outage = OutageLog(
            log, f"heartbeats to {where} fail", f"heartbeats to {where} resumed",
            failures=PUBLISH_FAILURES,
        )

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
            except TRANSIENT as exc:  # a broker that is away: heartbeats are not kept anyway
                log.debug("heartbeat producer did not close within the stop timeout: %r", exc)

    async def _run(self) -> None:
        while True:
            raise_if_cancel_swallowed()
            try:
                await self.send_one()
                self._outage.success()
            except TRANSIENT as exc:
                reason = f"{exc or type(exc).__name__}; heartbeat dropped"
                if self.same_outage is not None and self.same_outage() and not self._outage.down:
                    PUBLISH_FAILURES.inc()
                    log.debug("heartbeat dropped while the broker is unreachable: %s", reason)
                else:
                    self._outage.failure(reason)
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
            kwargs = self._kwargs
            self._producer = await start_client(lambda: AIOKafkaProducer(**kwargs), self.settings)
            await ensure_topics(self.settings, [self.topic])
        return self._producer
