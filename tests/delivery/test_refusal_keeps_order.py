"""A record batch the broker refuses is settled row by row (`SpoolPublisher` docstring); the
batches behind it on its partition, already prepared by the pipelined drain, must not overtake
those rows: they are kept back and the next drain sends them, at once and in order, with no
outage. (A stand-in producer answers for the broker, as in `test_head_of_line`.)"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import MessageSizeTooLargeError

from agent.kafka.settings import KafkaSettings, TopicNames
from agent.publisher import SpoolPublisher
from agent.spool import Spool
from tests.delivery.test_head_of_line import _Batch, _Broker
from tests.support.events import numbered_event

pytestmark = pytest.mark.integration


class _DeliveringBroker(_Broker):
    """`_Broker` that also keeps the seqs it delivered, in the order delivered."""

    def __init__(self, refuse: dict[bytes, type[Exception]]) -> None:
        super().__init__(refuse)
        self.delivered: list[int] = []

    async def send_batch(self, batch: _Batch, topic: str, *, partition: int
                         ) -> asyncio.Future[Any]:
        future = await super().send_batch(batch, topic, partition=partition)
        future.add_done_callback(lambda f: self._keep(f, batch.values))
        return future

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[Any]:
        future = await super().send(topic, value, key)
        future.add_done_callback(lambda f: self._keep(f, [value]))
        return future

    def _keep(self, future: asyncio.Future[Any], values: list[bytes]) -> None:
        if future.exception() is None:
            self.delivered += [json.loads(v)["seq"] for v in values]


async def test_batches_behind_a_refused_one_do_not_overtake_its_rows(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", topics=TopicNames())
    stored = spool.append([numbered_event(i, event_id=f"ev-{i}") for i in range(6)])
    broker = _DeliveringBroker({stored[1].to_json(): MessageSizeTooLargeError})
    pub = SpoolPublisher(spool, KafkaSettings(enable_idempotence=False), batch_size=2)
    pub._producer = broker  # type: ignore[assignment]  # (one partition: one key's order)
    try:
        for _ in range(3):  # a drain ends at the kept-back batches; the next sends them
            await pub._drain()
            if spool.depth() == 0:
                break
        assert (spool.depth(), spool.quarantined()) == (0, 1)
        assert pub.last_error is None, "kept-back batches were taken for an outage"
        assert broker.delivered == [ev.seq for i, ev in enumerate(stored) if i != 1]
    finally:
        pub._producer = None
        spool.close()
