"""`Outbox.add_all` among `add`s: every message in its key's partition, in the order added,
and `send_each` answering per message in that order (real aiokafka record batches, read back;
the producer only keeps what it is handed)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch

from agent.kafka import batching
from agent.kafka.batching import Outbox, PartitionCache

PARTITIONS = [0, 1, 2, 3]


class KeepingProducer:
    """What `Outbox` asks of a producer: batches built and kept, each acked at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, bytes, asyncio.Future[Any]]] = []
        #: Each batch's record count as aiokafka reads it (sequence numbers, emptiness).
        self.counts: list[int] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return set(PARTITIONS)

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(1024, 0)  # small: some partitions need more than one batch

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        count = batch.record_count()
        self.sent.append((topic, partition, batch._build(), future))
        self.counts.append(count)
        return future


def read_back(producer: KeepingProducer) -> list[tuple[str, int, bytes, bytes]]:
    got = []
    for topic, partition, buffer, _ in producer.sent:
        batch = DefaultRecordBatch(bytearray(buffer))
        records = list(batch)
        # Offsets 0, 1, ... in each batch, and its count: the records are appended to
        # aiokafka's record builder directly, counted by the Outbox.
        assert [r.offset for r in records] == list(range(len(records)))
        assert batch.last_offset_delta == len(records) - 1
        got += [(topic, partition, bytes(r.key), bytes(r.value)) for r in records]
    return got


@pytest.mark.parametrize("builder", ["direct", "public"])
async def test_runs_and_single_messages_keep_their_order_per_partition(
    builder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if builder == "public":  # an aiokafka whose BatchBuilder lacks the private members
        monkeypatch.setattr(batching, "_BUILDER_MEMBERS", ("_builder", "_no_such_member"))
    added: list[tuple[str, bytes, bytes]] = []
    producer = KeepingProducer()
    outbox = Outbox(producer, PartitionCache())  # type: ignore[arg-type]
    for round_ in range(3):
        run = [(f"rec-{i % 7}".encode(), f"r{round_}-{i}".encode() * 5) for i in range(40)]
        outbox.add_all("records", run)
        added += [("records", k, v) for k, v in run]
        outbox.add_all("alerts", [])  # (nothing: no run)
        for i in range(30):
            topic = "alerts" if i % 3 else "records"
            key, value = f"plc-{i % 5}".encode(), f"a{round_}-{i}".encode() * 5
            outbox.add(topic, key, value)
            added.append((topic, key, value))
    handed, error = await outbox.send_each()
    assert error is None and len(handed) == len(added)
    batch_of = {id(future): (topic, partition) for topic, partition, _, future in producer.sent}
    partitioner = DefaultPartitioner()
    for (topic, key, _), future in zip(added, handed, strict=True):
        assert future is not None
        assert batch_of[id(future)] == (topic, partitioner(key, PARTITIONS, PARTITIONS))
    got = read_back(producer)
    assert sorted(got) == sorted((t, partitioner(k, PARTITIONS, PARTITIONS), k, v)
                                 for t, k, v in added)
    assert len(producer.sent) > 2 * len(PARTITIONS)  # more than one batch for some partitions
    assert producer.counts == [len(list(DefaultRecordBatch(bytearray(b))))
                               for _, _, b, _ in producer.sent]
    for topic, partition in {(t, p) for t, p, _, _ in got}:
        assert [v for t, p, _, v in got if (t, p) == (topic, partition)] == [
            v for t, k, v in added
            if t == topic and partitioner(k, PARTITIONS, PARTITIONS) == partition]


async def test_send_waits_for_every_batch() -> None:
    producer = KeepingProducer()
    outbox = Outbox(producer, PartitionCache())  # type: ignore[arg-type]
    outbox.add_all("alerts", [(f"plc-{i}".encode(), b"x" * 100) for i in range(50)])
    await (await outbox.send())
    assert len(read_back(producer)) == 50
    assert all(future.done() for *_, future in producer.sent)
