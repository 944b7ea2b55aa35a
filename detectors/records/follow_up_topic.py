"""Follow-up on the records topic (``otwatch.records``): each reminder and escalation of a
pass (`escalation`) as one ``otwatch.records.follow_up/1`` message keyed by record id, for the
QMS and whoever else follows the records there. ``message_id`` is stable for one item on one
day (``<kind>/<record>/<what>/<date>``), so a consumer dedupes repeated passes of a day.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from agent.kafka.client_logs import demote_kafka_client_logs
from agent.kafka.settings import KafkaSettings
from agent.kafka.startup import start_with_retry
from agent.kafka.topics import ensure_topics
from detectors.records.escalation import Escalation, Reminder

SCHEMA = "otwatch.records.follow_up/1"


def follow_up_messages(reminders: list[Reminder], escalations: list[Escalation],
                       now: datetime) -> list[tuple[bytes, dict[str, Any]]]:
    """(key, message) for every reminder and escalation (pure)."""
    day = now.date().isoformat()
    found: list[tuple[bytes, dict[str, Any]]] = []
    for r in reminders:
        found.append((r.record_id.encode(), {
            "schema": SCHEMA, "kind": "reminder",
            "message_id": f"reminder/{r.record_id}/{r.what}/{day}", "record_id": r.record_id,
            "to_user": r.to_user, "what": r.what, "due": r.due.isoformat(),
            "text": r.text(now.date()), "at": now.isoformat()}))
    for e in escalations:
        found.append((e.record_id.encode(), {
            "schema": SCHEMA, "kind": "escalation",
            "message_id": f"escalation/{e.record_id}/{e.rule}/{day}", "record_id": e.record_id,
            "rule": e.rule, "roles": list(e.roles), "text": e.why, "at": now.isoformat()}))
    return found


async def publish_follow_up(kafka: KafkaSettings, topic: str,
                            messages: list[tuple[bytes, dict[str, Any]]]) -> int:
    """Send ``messages`` and wait for every acknowledgement; returns how many were sent."""
    if not messages:
        return 0
    demote_kafka_client_logs()
    producer = await start_with_retry(lambda: AIOKafkaProducer(**kafka.producer_kwargs()),
                                      kafka, "follow-up producer", None)
    assert producer is not None  # no stop event: it retries until it starts
    try:
        await ensure_topics(kafka, [topic])
        sends = [await producer.send(topic, orjson.dumps(body), key=key)
                 for key, body in messages]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    return len(messages)
