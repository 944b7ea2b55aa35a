"""Assertions shared by the delivery tests: complete, once per event_id, in order per key."""

from __future__ import annotations

from collections import defaultdict

from agent.contract import SuspectChange
from agent.kafka.settings import TopicNames
from agent.spool import topic_for
from tests.delivery.kafka_read import Received, first_occurrences


def assert_delivered(
    stored: list[SuspectChange], received: list[Received], topics: TopicNames
) -> None:
    """Every stored event arrived on its topic with its key; first arrivals in seq order per key."""
    firsts = first_occurrences(received)
    by_id = {r.value["event_id"]: r for r in firsts}
    missing = [ev.seq for ev in stored if ev.event_id not in by_id]
    assert not missing, f"{len(missing)} events never arrived, seqs {missing[:10]}..."
    for ev in stored:
        got = by_id[ev.event_id]
        assert got.topic == topic_for(ev, topics)
        assert got.key == ev.kafka_key()
        assert got.value["seq"] == ev.seq
    per_key: dict[tuple[str, bytes], list[int]] = defaultdict(list)
    for r in firsts:
        per_key[(r.topic, r.key)].append(r.value["seq"])
    for key, seqs in per_key.items():
        assert seqs == sorted(seqs), f"out of order for {key}: {seqs[:20]}"
