"""The generic trail relay: cursor, pure translation, sink; at least once, never past a
failure (real database of both dialects, a sink in memory standing in for Kafka or a ticket
system)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from detectors.records import (
    Outgoing,
    RecordHeader,
    RecordStore,
    TrailCursor,
    TrailEntry,
    TrailRelay,
)
from tests.records.lifecycle_steps import at
from tests.records.people import QA
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified
from tests.support.events import record_event as event


class SinkDown(Exception):
    pass


class MemorySink:
    failures: tuple[type[BaseException], ...] = (SinkDown,)

    def __init__(self, fail_first: int = 0) -> None:
        self.sent: list[Outgoing] = []
        self.fail_first = fail_first
        self.opened = self.closed = False

    async def open(self, stop: asyncio.Event) -> bool:
        self.opened = True
        return True

    async def send(self, messages: Sequence[Outgoing]) -> None:
        if self.fail_first:
            self.fail_first -= 1
            raise SinkDown("the ticket system is away")
        self.sent += messages

    async def close(self) -> None:
        self.closed = True


def state_changes(entry: TrailEntry, record: RecordHeader) -> list[Outgoing]:
    if entry.field != "state":
        return []
    return [Outgoing(entry.record_id.encode(), {"id": f"{entry.seq}/state", "new": entry.new,
                                                "ticket": record.security_ticket})]


@pytest.fixture
def cursor(store: RecordStore, store_target: tuple[str, str | None]) -> TrailCursor:
    target, schema = store_target
    return TrailCursor.open(target, "tickets.test", schema=schema)


async def test_relays_what_translate_makes_and_saves_the_cursor(
    store: RecordStore, cursor: TrailCursor,
) -> None:
    (out,) = store.record_events([(event(1), classified())], now=T0)
    rid = out.record_id or ""
    store.transition(rid, "triage", actor=QA, reason="r", now=at(1))
    sink = MemorySink(fail_first=1)
    relay = TrailRelay(store, cursor, state_changes, sink, name="tickets", batch=2)
    with pytest.raises(SinkDown):
        await relay.relay_batch()
    assert cursor.load() == 0 and sink.sent == []  # nothing counts as delivered
    while await relay.relay_batch():
        pass
    head = store.trail()[-1].seq
    assert cursor.load() == head == relay.status.cursor
    assert [(m.key, m.value["new"], m.value["ticket"]) for m in sink.sent] == [
        (rid.encode(), '"triage"', "SEC-2026-000001")]
    cursor.close()


async def test_the_running_relay_retries_after_a_failure_and_stops_cleanly(
    store: RecordStore, cursor: TrailCursor,
) -> None:
    (out,) = store.record_events([(event(1), classified())], now=T0)
    store.transition(out.record_id or "", "triage", actor=QA, reason="r",
                     now=at(1))
    sink = MemorySink(fail_first=2)
    relay = TrailRelay(store, cursor, state_changes, sink, name="tickets", interval_s=0.05)
    await relay.start()
    try:
        async with asyncio.timeout(10):
            while not sink.sent:
                await asyncio.sleep(0.02)
    finally:
        await relay.stop()
    assert len(sink.sent) == 1 and sink.closed and not relay.status.failing
    assert cursor.load() == store.trail()[-1].seq
    cursor.close()
