"""Read whole topics from the broker without a consumer group (fast on Tansu)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


@dataclass(frozen=True)
class Received:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: dict[str, Any]


async def read_topics(
    bootstrap: str,
    topics: list[str],
    *,
    until_count: int,
    limit_s: float = 30.0,
    client: dict[str, Any] | None = None,
) -> list[Received]:
    """Every record of ``topics`` from the beginning, until ``until_count`` arrived or the limit."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, **(client or {})
    )
    await consumer.start()
    out: list[Received] = []
    try:
        parts = await _partitions(consumer, topics, limit_s)
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        while len(out) < until_count and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for tp, records in batches.items():
                out.extend(
                    Received(
                        tp.topic, tp.partition, r.offset, r.key or b"", json.loads(r.value or b"")
                    )
                    for r in records
                )
    finally:
        await consumer.stop()
    return out


async def _partitions(
    consumer: AIOKafkaConsumer, topics: list[str], limit_s: float
) -> list[TopicPartition]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        await consumer._client.force_metadata_update()  # no group, no subscribe
        found = {t: consumer.partitions_for_topic(t) for t in topics}
        if all(found.values()) or loop.time() > deadline:
            break
        await asyncio.sleep(0.2)
    return [TopicPartition(t, p) for t, ps in found.items() for p in sorted(ps or ())]


def first_occurrences(records: list[Received]) -> list[Received]:
    """Each event_id once, at its first arrival (per partition offset order)."""
    seen: set[str] = set()
    out = []
    for r in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        if r.value["event_id"] not in seen:
            seen.add(r.value["event_id"])
            out.append(r)
    return out
