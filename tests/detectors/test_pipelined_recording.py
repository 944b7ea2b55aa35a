"""The pipelined classifier (`detectors.suspects`): a records transaction that fails while the
next batch was already read and parsed commits nothing of either, and a restart records every
event exactly once.

In this process: the real `detectors.service.Classifier`, the real broker (a Tansu process),
a real SQLite records database. The store fails its second batch (an error no retry cures,
as a bug would) only once the consumer has parsed the batch after it (the trusted-agent check
counts the messages parsed), so the failure meets the pipeline with a batch in flight.
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from agent.contract import SuspectChange
from agent.contract.signing import EventCheck
from agent.runtime.gc_tuning import CLASSIFIER_THRESHOLDS
from detectors.config import ClassifierConfig, ClassifierSection
from detectors.criteria import load_criteria
from detectors.records import RecordStore, open_store
from detectors.service import Classifier
from detectors.signatures import TrustedAgents
from detectors.store_retry import RetryingStore
from simulators.broker import EmbeddedBroker
from tests.detectors.running import ROOT, committed, create_topics, produce, settings
from tests.support.events import make_event

pytestmark = pytest.mark.e2e
SUSPECT = "otwatch.changes.suspect"
GROUP = "pipelined"
EVENTS = 40


class CountingAgents(TrustedAgents):
    """Unsigned events accepted; counts every message the consumer has parsed."""

    def __init__(self) -> None:
        super().__init__({}, require_signed=False)
        self.parsed = 0

    def check(self, raw: bytes | None, event: SuspectChange) -> EventCheck | None:
        self.parsed += 1
        return super().check(raw, event)


class FailsSecondBatch:
    """A records store whose second batch fails, once the batch after it has been parsed."""

    def __init__(self, store: RecordStore, agents: CountingAgents) -> None:
        self.store = store
        self.agents = agents
        self.sizes: list[int] = []
        self.overlapped = False
        self.failed = threading.Event()

    def record_events(self, items: Sequence[Any], **kwargs: Any) -> Any:
        self.sizes.append(len(items))
        if len(self.sizes) == 2:
            deadline = time.monotonic() + 20
            while self.agents.parsed <= sum(self.sizes) and time.monotonic() < deadline:
                time.sleep(0.01)  # (in the store's worker thread: the consumer reads on)
            self.overlapped = self.agents.parsed > sum(self.sizes)
            self.failed.set()
            raise RuntimeError("the records store failed (test)")
        return self.store.record_events(items, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def config(bootstrap: str, db: Path, tmp_path: Path) -> ClassifierConfig:
    return ClassifierConfig(
        classifier=ClassifierSection(
            group_id=GROUP, records_db=str(db), criteria=ROOT / "config" / "criteria.yaml",
            require_signed_events=False, batch_size=5, session_timeout_ms=6000,
            status_file=tmp_path / "status.json",
        ),
        kafka=settings(bootstrap),
    )



def processed(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT event_id FROM processed_events")]


async def test_a_failed_transaction_with_the_next_batch_in_flight_commits_neither(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    await create_topics(broker.bootstrap)
    sent = [make_event(controller={"id": f"oven-{i:02d}"}, line=f"line-{i}", seq=i + 1)
            for i in range(EVENTS)]
    await produce(broker.bootstrap, SUSPECT, [(e.kafka_key(), e.to_json()) for e in sent])
    db = tmp_path / "records.db"
    cfg = config(broker.bootstrap, db, tmp_path)
    criteria = load_criteria(cfg.classifier.criteria)
    agents = CountingAgents()
    with open_store(str(db)) as store:
        store.migrate()
        failing = FailsSecondBatch(store, agents)
        first = Classifier(cfg, criteria, RetryingStore(str(db), store=cast(RecordStore, failing)),
                           trusted=agents)
        with pytest.raises(RuntimeError, match="failed \\(test\\)"):
            await asyncio.wait_for(first.run(), 60)
    assert failing.failed.is_set() and failing.overlapped, (failing.sizes, agents.parsed)
    first_batch = failing.sizes[0]
    assert await committed(broker.bootstrap, GROUP) <= first_batch  # nothing of batch 2 or later
    assert len(processed(db)) == first_batch

    second = Classifier(cfg, criteria, RetryingStore(str(db)), trusted=CountingAgents())
    task = asyncio.create_task(second.run())
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while len(processed(db)) < EVENTS or await committed(broker.bootstrap, GROUP) < EVENTS:
            assert not task.done(), task
            assert asyncio.get_running_loop().time() < deadline, len(processed(db))
            await asyncio.sleep(0.2)
    finally:
        second.stop()
        await asyncio.wait_for(task, 30)
    ids = processed(db)
    assert len(ids) == len(set(ids)) == EVENTS
    assert set(ids) == {e.event_id for e in sent}
    with open_store(str(db)) as store:
        opened = store.list_records()
    assert sorted(r.controller for r in opened) == [f"oven-{i:02d}" for i in range(EVENTS)]
    assert all(len(r.evidence) == 1 for r in opened)
    # The classifier raised the collector's thresholds for its pipeline (`CLASSIFIER_THRESHOLDS`)
    assert all(now >= want for now, want in zip(gc.get_threshold(), CLASSIFIER_THRESHOLDS,
                                                 strict=True)), gc.get_threshold()
