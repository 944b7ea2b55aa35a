"""Spool rows as an agent before the size limits wrote them: raw, and too large for Kafka."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import orjson

from agent.kafka.settings import TopicNames
from tests.support.events import numbered_event

TOPICS = TopicNames()


def write_raw_row(path: Path, value: bytes, seq: int = 1) -> None:
    """A row as an agent without size limits wrote it: straight into the spool's table."""
    key = b"plant-1/press-01"
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO events (seq, topic, key, value, size, appended_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (seq, TOPICS.suspect, key, value, len(key) + len(value), time.time()),
        )
        db.execute("UPDATE meta SET value = ? WHERE name = 'last_seq'", (seq,))


def oversized_event() -> bytes:
    body = orjson.loads(numbered_event(0, event_id="too-large").to_json())
    body["new_value"] = "A" * 1_500_000  # a 1.5 MB OPC UA string, not truncated
    return orjson.dumps(body)
