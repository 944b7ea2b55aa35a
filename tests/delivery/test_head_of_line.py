"""Issue 14 item 2: one record the broker refuses for good never holds back the ones behind it.

A row too large for a Kafka message at the head of the spool (as an agent before the size
limits wrote a 1.5 MB OPC UA string) used to be retried for ever while every later event
waited behind it and the log said "Kafka unreachable". Now it is moved to the spool's
quarantine (kept, counted, logged once) and the later events flow, through the real broker.
The broker-side refusal path (Tansu takes any size, so a stand-in producer answers for the
broker there: a refused record fails its whole record batch) checks that only the refused
record is set aside, never its batch-mates.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    UnknownError,
)
from prometheus_client import REGISTRY

from agent.kafka.settings import KafkaSettings, TopicNames
from agent.publisher import SpoolPublisher
from agent.spool import Row, Spool
from simulators.broker import EmbeddedBroker
from tests.delivery.checks import assert_delivered
from tests.delivery.head_of_line import oversized_event, write_raw_row
from tests.delivery.kafka_read import read_topics
from tests.delivery.waiting import wait_until_empty
from tests.support.events import numbered_event, numbered_events

pytestmark = pytest.mark.integration

TOPICS = TopicNames()


def quarantined_total() -> float:
    labels = {"reason": "MessageSizeTooLargeError"}
    return REGISTRY.get_sample_value("otwatch_agent_spool_quarantined_total", labels) or 0.0


async def test_an_oversized_head_is_quarantined_and_the_events_behind_it_flow(
    broker: EmbeddedBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spool.db"
    Spool(path, topics=TOPICS).close()
    write_raw_row(path, oversized_event())
    spool = Spool(path, topics=TOPICS)
    later = spool.append(numbered_events(20, start=1))
    before = quarantined_total()
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
    pub = SpoolPublisher(spool, settings, batch_size=8)
    caplog.set_level(logging.ERROR, logger="agent.publisher")
    await pub.start()
    try:
        await wait_until_empty(spool)
        assert pub.connected
    finally:
        await pub.stop()
    try:
        assert spool.quarantined() == 1
        ((_id, seq, topic, size, _at, reason),) = spool.quarantined_rows()
        assert (seq, topic) == (1, TOPICS.suspect) and size > 1_500_000
        assert reason.startswith("MessageSizeTooLargeError: ")
    finally:
        spool.close()
    assert quarantined_total() == before + 1
    gauge = REGISTRY.get_sample_value("otwatch_agent_spool_quarantine_events")
    assert gauge == 1.0
    received = await read_topics(broker.bootstrap, [TOPICS.suspect, TOPICS.authorized],
                                 until_count=len(later))
    assert sorted(r.value["event_id"] for r in received) == sorted(e.event_id for e in later)
    logged = [r.getMessage() for r in caplog.records if "quarantine" in r.getMessage()]
    assert len(logged) == 1 and "seq 1 " in logged[0]
    assert not [r for r in caplog.records if "unreachable" in r.getMessage()]


async def test_an_oversized_row_amid_a_batch_is_quarantined_and_its_neighbours_flow_in_order(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """The rows batched with it, the same controller's among them, arrive once each and in
    seq order per key (several keys, several partitions): only the refused row is set aside."""
    path = tmp_path / "spool.db"
    spool = Spool(path, topics=TOPICS)
    before = spool.append(numbered_events(30, controllers=4, start=1))
    spool.close()
    write_raw_row(path, oversized_event(), seq=31)  # the key of press-01, amid its events
    spool = Spool(path, topics=TOPICS)
    after = spool.append(numbered_events(30, controllers=4, start=32))
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap, enable_idempotence=False,
                             topic_partitions=3)
    pub = SpoolPublisher(spool, settings, batch_size=1000)  # all 61 rows in one flight
    await pub.start()
    try:
        await wait_until_empty(spool)
    finally:
        await pub.stop()
    try:
        assert [(seq, reason.split(":")[0]) for _, seq, _, _, _, reason
                in spool.quarantined_rows()] == [(31, "MessageSizeTooLargeError")]
    finally:
        spool.close()
    stored = before + after
    received = await read_topics(broker.bootstrap, [TOPICS.suspect, TOPICS.authorized],
                                 until_count=len(stored))
    assert_delivered(stored, received, TOPICS)
    assert len(received) == len(stored)  # nothing sent twice: no failure, no resend


async def test_requeue_puts_quarantined_events_back(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path, topics=TOPICS)
    spool.append(numbered_events(3))
    (first, *_rest) = spool.peek(10)
    assert spool.quarantine(first[0], "MessageSizeTooLargeError: test") == 1
    assert (spool.depth(), spool.quarantined()) == (2, 1)
    assert spool.requeue_quarantined() == 1
    assert (spool.depth(), spool.quarantined()) == (3, 0)
    assert spool.peek(10)[-1][3] == first[3]  # the same bytes, at the end of the queue
    spool.close()


class _Batch:
    """A record batch as the stand-in takes it: the values, in order."""

    def __init__(self) -> None:
        self.values: list[bytes] = []

    def append(self, *, key: bytes, value: bytes, timestamp: None) -> object:
        self.values.append(value)
        return self

    def close(self) -> None:
        pass


class _Broker:
    """Stands in for the broker's answers: a record is refused by value (and the record batch
    it is in with it, as the broker answers per batch), or every record."""

    def __init__(self, refuse: dict[bytes, type[Exception]], refuse_all: type[Exception] | None
                 = None, *, batches_taken: int | None = None, metadata: bool = True) -> None:
        self.refuse, self.refuse_all, self.sent = refuse, refuse_all, 0
        self.metadata = metadata  # False: the topics' partitions cannot be had
        #: After this many record batches, the producer's queue is stuck (the broker is away).
        self.batches_taken = batches_taken

    async def partitions_for(self, topic: str) -> set[int]:
        if not self.metadata:
            raise KafkaTimeoutError()
        return {0}

    def create_batch(self) -> _Batch:
        return _Batch()

    async def send_batch(self, batch: _Batch, topic: str, *, partition: int
                         ) -> asyncio.Future[Any]:
        if self.batches_taken is not None:
            if not self.batches_taken:
                raise KafkaTimeoutError()
            self.batches_taken -= 1
        self.sent += len(batch.values)
        errors = [self.refuse[v] for v in batch.values if v in self.refuse]
        return self._answer(self.refuse_all or (errors[0] if errors else None))

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[Any]:
        self.sent += 1
        return self._answer(self.refuse_all or self.refuse.get(value))

    def _answer(self, error: type[Exception] | None) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if error is None:
            loop.call_soon(fut.set_result, None)
        else:
            loop.call_soon(fut.set_exception, error())
        return fut


def _rows(spool: Spool) -> list[Row]:
    return spool.peek(100)


async def test_a_batch_refused_by_the_broker_sets_aside_only_the_refused_record(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    stored = spool.append([numbered_event(i, event_id=f"ev-{i}") for i in range(5)])
    bad = stored[2].to_json()
    pub = SpoolPublisher(spool, KafkaSettings(enable_idempotence=False))
    broker = _Broker({bad: MessageSizeTooLargeError})
    await pub._send_batch(broker, _rows(spool))  # type: ignore[arg-type]
    assert (spool.depth(), spool.quarantined()) == (0, 1)
    assert spool.quarantined_rows()[0][1] == stored[2].seq
    spool.close()


async def test_an_unnamed_error_on_every_record_is_an_outage_not_a_quarantine(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    spool.append(numbered_events(4))
    pub = SpoolPublisher(spool, KafkaSettings(enable_idempotence=False))
    broker = _Broker({}, refuse_all=UnknownError)
    with pytest.raises(UnknownError):
        await pub._send_batch(broker, _rows(spool))  # type: ignore[arg-type]
    assert (spool.depth(), spool.quarantined()) == (4, 0)
    spool.close()


async def test_an_unnamed_error_on_one_record_quarantines_it_once_the_next_gets_through(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    stored = spool.append([numbered_event(i, event_id=f"ev-{i}") for i in range(3)])
    pub = SpoolPublisher(spool, KafkaSettings(enable_idempotence=False))
    broker = _Broker({stored[0].to_json(): UnknownError})
    await pub._send_batch(broker, _rows(spool))  # type: ignore[arg-type]
    assert (spool.depth(), spool.quarantined()) == (0, 1)
    assert spool.quarantined_rows()[0][5].startswith("UnknownError: ")
    spool.close()


async def test_a_transient_failure_is_retried_not_quarantined(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    spool.append(numbered_events(3))
    pub = SpoolPublisher(spool, KafkaSettings(enable_idempotence=False))
    broker = _Broker({}, refuse_all=KafkaConnectionError)
    with pytest.raises(KafkaConnectionError):
        await pub._send_batch(broker, _rows(spool))  # type: ignore[arg-type]
    assert (spool.depth(), spool.quarantined()) == (3, 0)
    spool.close()


async def test_rows_whose_batch_could_not_be_handed_over_stay_and_nothing_is_quarantined(
    tmp_path: Path,
) -> None:
    """The producer's queue stuck after the first record batch (the authorized topic's, whose
    first row is the oldest): that row is acknowledged; every row from the first one whose
    batch was not handed over stays in the spool, also those of the handed batch behind it
    (sent again: at least once), and none is quarantined."""
    spool = Spool(tmp_path / "spool.db", topics=TOPICS)
    spool.append(numbered_events(10))  # rows 0 and 7 authorized, the others suspect
    rows = _rows(spool)
    assert [row[1] for row in rows[:2]] == [TOPICS.authorized, TOPICS.suspect]
    pub = SpoolPublisher(spool, KafkaSettings(enable_idempotence=False))
    with pytest.raises(KafkaTimeoutError):
        await pub._send_batch(_Broker({}, batches_taken=1), rows)  # type: ignore[arg-type]
    assert (spool.depth(), spool.quarantined()) == (9, 0)
    assert _rows(spool) == rows[1:]
    with pytest.raises(KafkaTimeoutError):  # no partitions known: nothing is handed over
        await pub._send_batch(_Broker({}, metadata=False), rows[1:])  # type: ignore[arg-type]
    assert (spool.depth(), spool.quarantined()) == (9, 0)
    spool.close()
