"""The group consumer of suspect changes: read, hold bursts, record, commit what is safe.

One consumer in the classifier group (``classifier.group_id``) reads the suspect topic; its
partitions are spread across the classifier processes. Per batch: parse every message (a bad
one goes to the dead-letter topic), check its signature (an untrusted event becomes a finding,
`detectors.signatures`), offer each event to the `BurstCorrelator` (events of a
possible burst are held back until it is decided), record what may be recorded (`Recorder`),
and commit offsets as the `OffsetLedger` allows: only after the records transaction and the
broker's acknowledgements, never past a held event. A rebalance hands a revoked partition's
held events and positions to its next owner, which reads from the last commit; the store's
dedupe on ``event_id`` makes that redelivery harmless (at-least-once delivery, exactly-once
effect).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from agent.contract import SuspectChange
from agent.kafka.consume import Batches, consume_batches
from agent.kafka.startup import start_with_retry
from detectors import health
from detectors.config import ClassifierConfig
from detectors.correlate import BurstCorrelator, BurstSettings, IntegrityKind
from detectors.errors import BadMessage
from detectors.integrity import Finding
from detectors.liveness import ConsumerProgress
from detectors.messages import DeadLetters
from detectors.offsets import OffsetLedger
from detectors.recorder import Placed, Recorder, Token
from detectors.signatures import TrustedAgents, judge_event

log = logging.getLogger(__name__)

#: A recorded batch whose messages the broker may not have acknowledged yet: its ledger plan
#: and the wait for the acks.
_Unacked = tuple[int, Awaitable[Any]]
#: A batch being recorded: done once its transaction is; the task that then publishes it.
_Recording = tuple["asyncio.Future[None]", "asyncio.Task[Awaitable[Any]]"]
#: A message read, its token, and what parsing it gave: an event, a finding, or why not.
_Judged = tuple[Any, Token, SuspectChange | Finding | BadMessage]


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: SuspectConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("partitions revoked: %s", sorted(f"{tp.topic}/{tp.partition}" for tp in revoked))
        self.owner.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("partitions assigned: %s", sorted(f"{tp.topic}/{tp.partition}" for tp in assigned))
        self.owner.status.set_assigned((tp.topic, tp.partition) for tp in assigned)


class SuspectConsumer:
    """Owns the group consumer of the suspect topic; `run` until cancelled."""

    def __init__(
        self,
        config: ClassifierConfig,
        bursts: BurstSettings,
        recorder: Recorder,
        dead_letters: DeadLetters,
        trusted: TrustedAgents,
        status: health.Status,
        clock: Callable[[], datetime],
        progress: ConsumerProgress | None = None,
    ) -> None:
        self.config = config
        self.progress = progress
        self.trusted = trusted
        self.recorder = recorder
        self.dead_letters = dead_letters
        self.status = status
        self.clock = clock
        self.bursts: BurstCorrelator[Token] = BurstCorrelator(bursts)
        self.ledger: OffsetLedger[TopicPartition] = OffsetLedger()
        self._unacked: _Unacked | None = None
        #: Planned batches older than `_unacked`, to commit at the next settle, in order.
        self._previous: list[_Unacked] = []
        #: The batch being recorded (its transaction may be running in a worker thread).
        self._recording: _Recording | None = None
        #: The task publishing the last batch recorded.
        self._sent: asyncio.Task[Awaitable[Any]] | None = None

    def _forged(self, finding: Finding, msg: Any, token: Token) -> Placed:
        health.FINDINGS.labels(IntegrityKind.FORGED_EVENT.value).inc()
        self.status.findings += 1
        log.warning("forged event %s/%d@%d: %s", msg.topic, msg.partition, msg.offset,
                    finding.event.verdict_reason)
        return finding.event, finding.context, token

    def revoked(self, partitions: set[TopicPartition]) -> None:
        """A revoked partition's held events and positions belong to its next owner now."""
        self.bursts.drop(lambda token: token[0] in partitions)
        self.ledger.revoked(partitions)
        self.trusted.parsed_events.forget("group", partitions)  # (kept for it no more)

    async def run(self, stop: asyncio.Event) -> None:
        """Start the consumer (retrying until the broker answers), then read until cancelled."""
        config = self.config
        self.trusted.parsed_events.forget("group")  # (where an earlier run had read: not here)
        consumer = await start_with_retry(
            lambda: AIOKafkaConsumer(
                group_id=config.classifier.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=config.classifier.session_timeout_ms,
                heartbeat_interval_ms=config.classifier.session_timeout_ms // 3,
                **config.classifier.fetch_kwargs(),
                **config.kafka.consumer_kwargs(),
            ),
            config.kafka, "consumer", stop,
        )
        if consumer is None:
            return
        consumer.subscribe([config.topics.suspect], listener=_Rebalance(self))
        try:
            await consume_batches(
                consumer, lambda batches: self._on_batch(consumer, batches),
                timeout_ms=500, max_records=config.classifier.batch_size,
            )
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._commit_last(consumer), 10)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 10)

    async def _on_batch(self, consumer: AIOKafkaConsumer, batches: Batches) -> None:
        """Parse this batch while the previous one is recorded; record it while the previous
        one is published.

        Pipelined: batch N's records transaction runs in a worker thread (`RetryingStore.call`)
        while batch N+1 is read, parsed and its signatures checked (pure work that touches no
        state). Only once N's transaction committed (`_stored`) does N+1 enter the burst
        correlator, the offset ledger and the recorder, so N's offsets are planned without
        N+1's, and the transactions run one after the other, in the order read. N+1's
        transaction then starts, and N's record events and alerts are sent meanwhile. The wait
        for the broker's acks is pipelined too: N's offsets are committed one batch later, once
        its messages are acked. Per batch the order holds: records transaction committed, its
        messages acknowledged, then its offsets committed.
        """
        now = self.clock()
        self.bursts.shared = _shares_partitions(consumer, self.config.topics.suspect)
        judged = self._judge(batches, now)
        stored = await self._stored()
        placed: list[Placed] = []
        refused: list[tuple[Any, str]] = []
        for msg, token, verdict in judged:
            if isinstance(verdict, BadMessage):
                refused.append((msg, str(verdict)))
            elif isinstance(verdict, Finding):  # never the record it claims: a finding
                placed.append(self._forged(verdict, msg, token))
            else:
                placed += self.bursts.offer(verdict, token, now=now)
        for tp, messages in batches.items():
            if messages:
                self.ledger.consumed(tp, messages[-1].offset)
        # Acknowledged or given up before this batch's offsets can be planned for a commit.
        await self.dead_letters.send(refused)
        placed += self.bursts.due(now=now)
        if stored is not None:
            self._queue(*stored)
        if placed:
            self._recording = self._record(placed, now)
        else:  # nothing to record: plan now (held events, dead letters may allow it)
            self._queue(self._plan(), asyncio.gather())
        await self._commit_previous(consumer)
        if self.progress is not None:
            self.progress.tick()
        health.set_lag(
            (tp.topic, tp.partition, (consumer.highwater(tp) or pos) - pos)
            for tp, pos in self.ledger.positions().items()
        )

    def _judge(self, batches: Batches, now: datetime) -> list[_Judged]:
        """Every message parsed and its signature checked (or why it is refused)."""
        limit = self.config.classifier.max_message_bytes
        judged: list[_Judged] = []
        for tp, messages in batches.items():
            # The integrity reader reads these messages too: each is parsed once for both.
            watch_at = self.trusted.parsed_events.passed("group", tp, messages[-1].offset)
            for msg in messages:
                token = (tp, msg.offset, msg.value)
                try:
                    verdict = judge_event(
                        msg.value, max_bytes=limit, trusted=self.trusted, now=now,
                        keep=watch_at is not None and msg.offset > watch_at,
                    )
                except BadMessage as exc:
                    judged.append((msg, token, exc))
                    continue
                judged.append((msg, token, verdict))
        return judged

    def _record(self, placed: list[Placed], now: datetime) -> _Recording:
        """Record, then publish, in a task of its own; the first future is done (or failed)
        once the records transaction is, the task once the messages are sent (after the
        previous batch's: record events and alerts leave in the order their batches were
        read)."""
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        previous = self._sent

        async def record() -> Awaitable[Any]:
            try:
                batch = await self.recorder.store(placed, now)
            except asyncio.CancelledError:
                stored.cancel()
                raise
            except Exception as exc:
                stored.set_exception(exc)  # raised where the pipeline waits for it (`_stored`)
                return asyncio.gather()
            stored.set_result(None)
            if previous is not None:
                await asyncio.wait({previous})
            return await self.recorder.publish(batch)

        self._sent = asyncio.ensure_future(record())
        return stored, self._sent

    async def _stored(self) -> tuple[int, Awaitable[Any]] | None:
        """Wait for the batch being recorded to commit its transaction; its offsets' plan and
        the wait for its acks. A failed transaction raises here: nothing of it, or of anything
        read after it, is committed."""
        if self._recording is None:
            return None
        stored, sent = self._recording
        # (shielded: a stop that cancels this wait lets the transaction finish; `run` waits
        # for it again before the last commit; a failed one stays failed, never planned)
        await asyncio.shield(stored)
        self._recording = None
        return self._plan(), asyncio.ensure_future(_acked(sent))

    def _plan(self) -> int:
        """The offsets recorded so far, as a plan waiting for acks (`OffsetLedger.recorded`)."""
        held = self.bursts.held_tokens()
        health.HELD.set(len(held))
        return self.ledger.recorded((tp, offset) for tp, offset, _ in held)

    def _queue(self, plan: int, acked: Awaitable[Any]) -> None:
        """A planned batch and the wait for its acks; the one before it is committed next."""
        if self._unacked is not None:
            self._previous.append(self._unacked)
        self._unacked = (plan, acked)

    async def _commit_previous(self, consumer: AIOKafkaConsumer) -> None:
        previous, self._previous = self._previous, []
        for batch in previous:
            await self._commit(consumer, batch)

    async def _commit_last(self, consumer: AIOKafkaConsumer) -> None:
        """On stop: commit the last recorded batch if its messages were acked (else the next
        owner reads it again and the store recognises it)."""
        stored = await self._stored()
        if stored is not None:
            self._queue(*stored)
        await self._commit_previous(consumer)
        last, self._unacked = self._unacked, None
        if last is not None:
            await self._commit(consumer, last)

    async def _commit(self, consumer: AIOKafkaConsumer, batch: _Unacked) -> None:
        """Once a recorded batch's messages are acked, commit its offsets (those still ours)."""
        plan, acked = batch
        await acked
        offsets = self.ledger.acknowledged(plan, consumer.assignment())
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # A rebalance took the partitions away: the next owner reads from the last commit
            # and the store recognises what was already recorded.
            log.warning("offset commit refused (%s); the next owner redelivers", exc)
            return
        self.ledger.committed(offsets)


async def _acked(sent: Awaitable[Awaitable[Any]]) -> None:
    """A batch published (``sent``), then acknowledged."""
    await (await sent)


def _shares_partitions(consumer: AIOKafkaConsumer, topic: str) -> bool:
    """True when other classifier processes own some of the topic's partitions: the burst
    correlator then holds the first controller's events too (`detectors.correlate`)."""
    partitions = consumer.partitions_for_topic(topic) or set()
    mine = sum(1 for tp in consumer.assignment() if tp.topic == topic)
    return mine < len(partitions)
