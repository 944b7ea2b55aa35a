"""The classifier's messages in: parse what it reads, dead-letter what it cannot.

In: ``otwatch.change/1`` and ``/2`` events (`parse_event`) and ``otwatch.heartbeat/1`` and
``/2`` heartbeats (`parse_heartbeat`), the `agent.contract` models. Anything else raises
`BadMessage` with a reason a person can act on, and the group consumer sends the message to
the dead-letter topic with that reason (`DeadLetters`, body `dead_letter`, schema
``otwatch.dead-letter/1``): a malformed message never crashes the classifier, and is counted
(``otwatch_classifier_dead_letters_total``).
What the classifier sends out (alerts, record events) is `detectors.alerts`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import orjson
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel, ValidationError

from agent.contract import CHANGE_SCHEMAS, HEARTBEAT_SCHEMAS, Heartbeat, SuspectChange
from detectors import health
from detectors.errors import BadMessage

log = logging.getLogger(__name__)

DLQ_SCHEMA = "otwatch.dead-letter/1"

M = TypeVar("M", bound=BaseModel)


def _parse(value: bytes | None, schemas: tuple[str, ...], model: type[M]) -> M:
    schema = " or ".join(schemas)
    if value is None:
        raise BadMessage(f"empty message (tombstone) where {schema} was expected")
    try:
        head = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise BadMessage(f"not JSON: {exc}") from None
    if not isinstance(head, dict):
        raise BadMessage("not a JSON object")
    if head.get("schema") not in schemas:
        raise BadMessage(f"unknown schema {head.get('schema')!r}; this classifier reads {schema}")
    try:
        return model.model_validate(head)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadMessage(f"invalid {head['schema']} message: {where}: {first['msg']}") from None


def parse_event(value: bytes | None) -> SuspectChange:
    """One Kafka message value to an event, or `BadMessage` with a reason a person can act on.

    ``model_validate_json`` on the bytes costs half of ``orjson.loads`` plus ``model_validate``;
    it decides alone only for a plain message that names its schema. Everything else goes the
    careful way, which names the problem for the dead-letter topic.
    """
    if value is not None and _plain(value):
        try:
            event = SuspectChange.model_validate_json(value)
        except ValidationError:
            pass
        else:
            if "schema_" in event.model_fields_set and _small_ints(event):
                return event  # (the model defaults a missing schema: the check above refuses it)
    return _parse(value, CHANGE_SCHEMAS, SuspectChange)


def _plain(value: bytes) -> bool:
    """No NaN, Infinity or escaped code point: texts pydantic's parser and orjson may judge
    differently. The store keeps the message as evidence, which must load with orjson again."""
    return b"NaN" not in value and b"Infinity" not in value and b"\\u" not in value


def _small_ints(event: SuspectChange) -> bool:
    """No integer beyond 64 bits (orjson reads those as floats, pydantic as ints: the careful
    way keeps what the classifier always did); a recipe value takes the careful way too."""
    values = (event.seq, event.old_value, event.new_value)
    return all(
        not isinstance(v, dict) and (not isinstance(v, int) or -(2**63) <= v < 2**64)
        for v in values
    )


def parse_heartbeat(value: bytes | None) -> Heartbeat:
    beat = _parse(value, HEARTBEAT_SCHEMAS, Heartbeat)
    if beat.sent_at is None:
        raise BadMessage(f"invalid {beat.schema_} message: sent_at: missing")
    return beat


def dead_letter(
    *, reason: str, topic: str, partition: int, offset: int, key: bytes | None,
    value: bytes | None, at: datetime,
) -> dict[str, Any]:
    """The dead-letter message: the reason, where the message was, and its key and value as
    text (undecodable bytes replaced), so a person can read it and send it again."""
    return {
        "schema": DLQ_SCHEMA,
        "reason": reason,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key.decode("utf-8", "replace") if key else None,
        "value": value.decode("utf-8", "replace") if value is not None else None,
        "at": at.isoformat(),
    }


class DeadLetters:
    """Sends the messages the classifier cannot read to the dead-letter topic, with the reason."""

    def __init__(
        self, producer: AIOKafkaProducer, topic: str, status: health.Status,
        clock: Callable[[], datetime],
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._status = status
        self._clock = clock

    async def send(self, msg: Any, reason: str) -> None:
        """Count, log and send one message (a consumer record) with why it was refused; waits
        for the broker's acknowledgement, so its offset may be committed after."""
        health.DEAD.labels(health.dead_letter_reason(reason)).inc()
        self._status.dead_letters += 1
        log.warning("dead letter %s/%d@%d: %s", msg.topic, msg.partition, msg.offset, reason)
        body = dead_letter(
            reason=reason, topic=msg.topic, partition=msg.partition, offset=msg.offset,
            key=msg.key, value=msg.value, at=self._clock(),
        )
        await self._producer.send_and_wait(self._topic, orjson.dumps(body), key=msg.key)
