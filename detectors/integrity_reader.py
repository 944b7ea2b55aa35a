"""The integrity reader: every agent's events and heartbeats, for the classifier's own findings.

No consumer group: every classifier process reads every partition of both change topics
(suspect and authorized: every event an agent spools has a ``seq``) and the heartbeats, and
feeds them to `detectors.integrity.AgentWatch`. Every ``integrity.check_interval_s`` it asks for
the findings that are due (a gap in an agent's ``seq``, a silent agent) and records them like
any other event (`Recorder`). Findings have deterministic event ids, so several processes
finding the same thing write one record. Only events a trusted agent signed count
(`detectors.signatures`): an untrusted one on the authorized topic is a ``forged_event`` finding
of its own. A message of the suspect topic is parsed once for this reader and the group
consumer, by whichever reads it first (`detectors.parsed_events`). Nothing is committed: the
reader starts from ``integrity.start_from`` on every start, placed by
`detectors.integrity_cut.StartCut` (one cut in the agents' time for every partition, so a
start never makes a gap of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from agent.contract import SuspectChange
from agent.kafka.consume import Batches, caught_up, consume_batches
from agent.kafka.startup import start_with_retry
from detectors import health
from detectors.config import ClassifierConfig
from detectors.correlate import IntegrityKind
from detectors.errors import BadMessage
from detectors.integrity import AgentWatch
from detectors.integrity_cut import StartCut
from detectors.messages import parse_event, parse_heartbeat
from detectors.recorder import Placed, Recorder
from detectors.signatures import TrustedAgents, forged_finding

log = logging.getLogger(__name__)


class IntegrityReader:
    """Owns the group-less reader of the agents' data; `run` until cancelled."""

    def __init__(
        self,
        config: ClassifierConfig,
        recorder: Recorder,
        trusted: TrustedAgents,
        status: health.Status,
        clock: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.recorder = recorder
        self.trusted = trusted
        #: Untrusted events of the authorized topic, recorded at the next check (those of the
        #: suspect topic are the group consumer's, recorded once per partition owner).
        self._forged: list[Placed] = []
        self.status = status
        self.clock = clock
        integrity = config.integrity
        self.agents = AgentWatch(
            silence_after_s=integrity.silence_after_s, grace_s=integrity.seq_gap_grace_s
        )
        self._last_check: datetime | None = None
        self.cut = StartCut(integrity.start_from, clock())

    async def run(self, stop: asyncio.Event) -> None:
        """Start the reader (retrying until the broker answers), then read until cancelled."""
        config = self.config
        self.cut = StartCut(config.integrity.start_from, self.clock())
        self.trusted.parsed_events.forget("watch")  # (where an earlier run had read: not here)
        watch = await start_with_retry(
            lambda: AIOKafkaConsumer(
                # The start is the cut's (`StartCut.place`). The client's own resets (a new
                # assignment after a metadata change, an offset out of range) go back, never
                # forward: a skip would be a gap; a record read again is a resend, and one
                # stamped before the cut does not count.
                group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
                **config.classifier.fetch_kwargs(), **config.kafka.consumer_kwargs(),
            ),
            config.kafka, "agent watch", stop,
        )
        if watch is None:
            return
        topics = config.topics
        watch.subscribe([topics.suspect, topics.authorized, topics.heartbeat])
        try:
            await consume_batches(
                watch, lambda batches: self._on_batch(watch, batches),
                timeout_ms=250, max_records=5_000,
            )
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(watch.stop(), 10)

    async def _on_batch(self, watch: AIOKafkaConsumer, batches: Batches) -> None:
        now = self.clock()
        placed_now = await self.cut.place(watch)
        for tp, messages in batches.items():
            if tp in placed_now or not self.cut.placed(tp):
                continue  # read from the client's own start: read again from the cut
            self._saw(tp, messages, now)
        last = self._last_check
        if last is None or (now - last).total_seconds() >= self.config.integrity.check_interval_s:
            self._last_check = now
            reader_caught_up = self.cut.all_placed(watch) and await caught_up(watch)
            self._set_watching(reader_caught_up)
            await self._record_findings(now, reader_caught_up)

    def _saw(self, tp: TopicPartition, messages: list[Any], now: datetime) -> None:
        limit = self.config.classifier.max_message_bytes
        topics = self.config.topics
        shared = self.trusted.parsed_events
        # The group consumer reads the suspect topic too: each message is parsed once for both.
        group_at = shared.passed("watch", tp, messages[-1].offset) if (
            tp.topic == topics.suspect) else None
        for msg in messages:
            try:
                if tp.topic == topics.heartbeat:
                    self.agents.saw_heartbeat(parse_heartbeat(msg.value, max_bytes=limit))
                elif tp.topic == topics.suspect:
                    keep = group_at is not None and msg.offset > group_at
                    event = shared.parse(msg.value, max_bytes=limit, keep=keep)
                    self._saw_event(msg, event, now)
                else:
                    self._saw_event(msg, parse_event(msg.value, max_bytes=limit), now)
            except BadMessage as exc:  # the group consumer dead-letters bad events, once
                log.debug("agent watch skips %s/%d@%d: %s", msg.topic, msg.partition,
                          msg.offset, exc)

    def _saw_event(self, msg: Any, event: SuspectChange, now: datetime) -> None:
        """Count a trusted event's seq; an untrusted one proves nothing (a forger could fill
        a gap with it), and on the authorized topic it is a finding of its own."""
        check = self.trusted.check(msg.value, event)
        if check is None:
            if self.cut.counts(msg):
                self.agents.saw_event(event, now=now)
            return
        if msg.topic == self.config.topics.authorized:
            finding = forged_finding(event, msg.value, check, now)
            token = (TopicPartition(msg.topic, msg.partition), msg.offset, msg.value)
            self._forged.append((finding.event, finding.context, token))

    def _set_watching(self, reader_caught_up: bool) -> None:
        if reader_caught_up != self.status.watching:
            self.status.watching = reader_caught_up
        self.status.write()

    async def _record_findings(self, now: datetime, reader_caught_up: bool) -> None:
        findings = self.agents.findings(now=now, caught_up=reader_caught_up)
        for finding in findings:
            kind = finding.context.integrity
            health.FINDINGS.labels(kind.value if kind else "unknown").inc()
            log.warning("integrity finding %s: %s", finding.event.event_id,
                        finding.event.verdict_reason)
        self.status.findings += len(findings)
        placed: list[Placed] = [(f.event, f.context, None) for f in findings]
        await (await self.recorder.record(placed, now))
        forged, self._forged = self._forged, []
        for event, _, _ in forged:
            health.FINDINGS.labels(IntegrityKind.FORGED_EVENT.value).inc()
            log.warning("forged event on %s: %s", self.config.topics.authorized,
                        event.verdict_reason)
        self.status.findings += len(forged)
        # Apart: with a message each, the evidence keeps the bytes as they were received.
        await (await self.recorder.record(forged, now))
