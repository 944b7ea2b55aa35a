"""The classifier's messages in: parse what it reads, dead-letter what it cannot.

In: ``otwatch.change/1`` and ``/2`` events (`parse_event`) and ``otwatch.heartbeat/1`` and
``/2`` heartbeats (`parse_heartbeat`), the `agent.contract` models. Anything else raises
`BadMessage` with a reason a person can act on, and the group consumer sends the message to
the dead-letter topic with that reason (`DeadLetters`, body `dead_letter`, schema
``otwatch.dead-letter/2``): a malformed message never crashes the classifier, and is counted
(``otwatch_classifier_dead_letters_total``). A message over ``classifier.max_message_bytes`` is
not parsed at all (`too_large`).

The dead-letter path cannot fail in its turn: a dead letter carries the value's size, SHA-256
and at most its first `DEAD_LETTER_HEAD_BYTES` (never the whole value: a dead letter that copied
a 1.5 MB message was refused by the broker, and the classifier crashed on it at every start),
and one that still cannot be delivered is counted and given up.
What the classifier sends out (alerts, record events) is `detectors.alerts`.
"""

from __future__ import annotations

import asyncio
import codecs
import hashlib
import logging
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import orjson
import pydantic_core
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError
from pydantic import BaseModel, ValidationError

from agent.contract import CHANGE_SCHEMAS, HEARTBEAT_SCHEMAS, Heartbeat, SuspectChange
from agent.runtime.backoff import Backoff
from agent.runtime.outage import OutageLog
from detectors import health
from detectors.errors import BadMessage

log = logging.getLogger(__name__)

DLQ_SCHEMA = "otwatch.dead-letter/2"
#: The most of a refused value a dead letter carries (as text); its size and SHA-256 name it.
DEAD_LETTER_HEAD_BYTES = 4096
#: Bounds on the other texts of a dead letter: a dead letter is small whatever was refused.
MAX_KEY_BYTES = 1024
MAX_REASON_CHARS = 1000

M = TypeVar("M", bound=BaseModel)


def _parse(value: bytes | None, schemas: tuple[str, ...], model: type[M]) -> M:
    schema = " or ".join(schemas)
    if value is None:
        raise BadMessage(f"empty message (tombstone) where {schema} was expected")
    try:
        head = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise BadMessage(f"not JSON: {exc}{_bare_number_named(value)}") from None
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


#: How a refusal names a member holding a number JSON cannot carry, and says the fix.
_BARE_NUMBER = (
    "; {where}: a bare NaN, Infinity or number beyond a float's range, which JSON has not and "
    'the evidence could not keep; fix: write it as {{"$float": "NaN"}}, {{"$float": '
    '"Infinity"}} or {{"$float": "-Infinity"}} (agent.contract.values)'
)


def _bare_number_named(value: bytes) -> str:
    """For a message orjson refused: the first member holding a bare ``NaN``, ``Infinity``
    or a number beyond a float's range (``1e400``), which pydantic's own parser reads and
    orjson refuses, and the fix; "" when there is none (or the message is not JSON at all)."""
    try:
        body = pydantic_core.from_json(value, allow_inf_nan=True)
    except ValueError:
        return ""
    where = _bare_number_at(body, ())
    if where is None:
        return ""
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p[:40]}" for p in where)
    return _BARE_NUMBER.format(where=path[1:] if path.startswith(".") else path)


def _bare_number_at(node: object, where: tuple[str | int, ...]) -> tuple[str | int, ...] | None:
    if isinstance(node, float):
        return None if math.isfinite(node) else where
    if isinstance(node, int):
        return None if -_FLOAT_MAX <= node <= _FLOAT_MAX else where
    items: Iterable[tuple[str | int, object]]
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return None
    for key, item in items:
        found = _bare_number_at(item, (*where, key))
        if found is not None:
            return found
    return None


_FLOAT_MAX = int(sys.float_info.max)


def parse_event(value: bytes | None, *, max_bytes: int | None = None) -> SuspectChange:
    """One Kafka message value to an event, or `BadMessage` with a reason a person can act on.

    A value over ``max_bytes`` is refused unread (`too_large`).

    ``model_validate_json`` on the bytes costs half of ``orjson.loads`` plus ``model_validate``;
    it decides alone only for a plain message that names its schema. The common event is then
    taken after one glance (`_common`); everything else goes the careful way, which names the
    problem for the dead-letter topic. (A hand-written reader, ``orjson.loads`` plus exact type
    checks plus building the frozen models directly, was measured at 13 µs against pydantic's
    8: pydantic-core builds the three models faster than Python can.)
    """
    if value is None:
        return _parse(value, CHANGE_SCHEMAS, SuspectChange)  # (refused: a tombstone)
    if max_bytes is not None and len(value) > max_bytes:
        too_large(value, max_bytes)
    if _plain(value):
        try:
            event: SuspectChange = _validate_json(value)
        except ValidationError:
            pass
        else:
            if _common(event):
                return event
            if "schema_" in event.model_fields_set and _small_ints(event):
                # (the model defaults a missing schema: the check above refuses it; a NUL
                # character is always escaped in JSON, so a plain message holds none)
                return _names_fit(event, nul_possible=False)
    return _names_fit(_parse(value, CHANGE_SCHEMAS, SuspectChange), nul_possible=True)


#: The longest name the classifier takes (ids, sites, lines, controllers, tags, addresses,
#: actors): far above any real one, and within what every records database can index.
MAX_NAME_CHARS = 256
#: The longest free text (verdict reasons, why an approval did not match).
MAX_TEXT_CHARS = 16_384


#: What ``SuspectChange.model_validate_json`` calls, without the wrapper's checks of its
#: arguments (none given here): about 0.6 µs of the ~11 µs the parse takes here.
_validate_json = SuspectChange.__pydantic_validator__.validate_json


def _common(event: SuspectChange) -> bool:
    """True for the common event the plain path takes as it is: its schema given, plain values
    (what `_small_ints` looks for), no approval, no context, every name and text within its
    limit (what `_names_fit` checks). One glance costs a few ``len`` calls; False means only
    "look the longer way" (`_small_ints`, then `_names_fit`, which name what is wrong)."""
    if event.approval is not None or event.context:
        return False
    if event.snapshot is not None and not _finite(event.snapshot.values):
        return False
    for v in (event.old_value, event.new_value):
        # (``seq`` needs no look: the model holds it within 0 .. 2**63 - 1)
        if type(v) is float:
            if v - v != 0.0:  # (infinite or NaN: both give NaN)
                return False
        elif type(v) is int:
            if not _INT64_MIN <= v < _UINT64_END:
                return False
        elif type(v) is not str and type(v) is not bool and v is not None:
            return False
    controller, tag = event.controller, event.tag
    return (
        "schema_" in event.model_fields_set
        and len(event.event_id) <= MAX_NAME_CHARS and len(event.agent_id) <= MAX_NAME_CHARS
        and len(event.site) <= MAX_NAME_CHARS and len(event.line) <= MAX_NAME_CHARS
        and len(controller.id) <= MAX_NAME_CHARS and len(controller.endpoint) <= MAX_NAME_CHARS
        and len(tag.name) <= MAX_NAME_CHARS and len(tag.address) <= MAX_NAME_CHARS
        and (tag.unit is None or len(tag.unit) <= MAX_NAME_CHARS)
        and (event.actor is None or len(event.actor) <= MAX_NAME_CHARS)
        and len(event.verdict_reason) <= MAX_TEXT_CHARS
    )


def _names_fit(event: SuspectChange, *, nul_possible: bool) -> SuspectChange:
    """The event, if its names and texts are ones a records database can keep: no name over
    `MAX_NAME_CHARS` (PostgreSQL cannot index an id of 10 kB), no text over `MAX_TEXT_CHARS`,
    and no NUL character (PostgreSQL text cannot hold one). Values may hold anything."""
    names = _names(event)
    texts: list[tuple[str, str | None]] = [("verdict_reason", event.verdict_reason)]
    if event.approval is not None:
        texts.append(("approval.why_not_matched", event.approval.why_not_matched))
    for limit, fields in ((MAX_NAME_CHARS, names), (MAX_TEXT_CHARS, texts)):
        for where, text in fields:
            if text is None:
                continue
            if len(text) > limit:
                raise BadMessage(f"invalid {event.schema_} message: {where}: {len(text)} "
                                 f"characters, over {limit}")
            if nul_possible and "\x00" in text:
                raise BadMessage(f"invalid {event.schema_} message: {where}: contains a NUL "
                                 "character")
    return event


def _names(event: SuspectChange) -> list[tuple[str, str | None]]:
    controller, tag, approval = event.controller, event.tag, event.approval
    names: list[tuple[str, str | None]] = [
        ("event_id", event.event_id), ("agent_id", event.agent_id), ("site", event.site),
        ("line", event.line), ("controller.id", controller.id),
        ("controller.endpoint", controller.endpoint), ("tag.name", tag.name),
        ("tag.address", tag.address), ("tag.unit", tag.unit), ("actor", event.actor),
    ]
    if approval is not None:
        names += [("approval.id", approval.id), ("approval.approved_by", approval.approved_by),
                  ("approval.change_control_ref", approval.change_control_ref)]
    names += [(f"context key {key[:40]!r}", key) for key in event.context]
    return names


def _plain(value: bytes) -> bool:
    """No NaN, Infinity or escaped code point: texts pydantic's parser and orjson may judge
    differently. The store keeps the message as evidence, which must load with orjson again.

    Each text is looked for only when its first byte is in the message (``memchr``: a fifth
    of the cost of a search for two or more bytes): a signed event's base64 holds ``N`` and
    ``I``, almost never a backslash, and its ``\\u`` search alone cost 1.5 µs."""
    return (
        (b"\\" not in value or b"\\u" not in value)
        and (b"N" not in value or b"NaN" not in value)
        and (b"I" not in value or b"Infinity" not in value)
    )


def _small_ints(event: SuspectChange) -> bool:
    """No integer beyond 64 bits (orjson reads those as floats, pydantic as ints: the careful
    way keeps what the classifier always did), no number too large for a float (``1e400``:
    pydantic reads infinity, orjson refuses it, and the evidence must load with orjson again;
    the agent writes a real infinity as ``{"$float": "inf"}``); a recipe value takes the
    careful way too. No NaN or infinity in ``context`` or the snapshot either (`_finite`)."""
    for v in (event.seq, event.old_value, event.new_value):
        # (exact types first: the common values cost no isinstance chain)
        if type(v) is float:
            if not math.isfinite(v):
                return False
        elif type(v) is int:
            if not _INT64_MIN <= v < _UINT64_END:
                return False
        elif type(v) is not str and type(v) is not bool and v is not None and not _small(v):
            return False
    snapshot = event.snapshot
    return _finite(event.context) and (snapshot is None or _finite(snapshot.values))


def _finite(values: dict[str, Any]) -> bool:
    """No NaN or infinity among ``values`` (``context``, a snapshot's values), recipes and
    arrays in them included. pydantic's parser reads a bare ``NaN``, ``Infinity`` or
    ``1e400`` as one, orjson refuses them; the agent's ``{"$float": "NaN"}`` reads as one too.
    False means only "let orjson decide" (the careful way), which tells the two apart."""
    try:
        return all(map(math.isfinite, values.values()))  # (numbers only: most of them)
    except (TypeError, OverflowError):
        return all(map(_finite_value, values.values()))


def _finite_value(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(map(_finite_value, value.values()))
    if isinstance(value, list):
        return all(map(_finite_value, value))
    return True


_INT64_MIN, _UINT64_END = -(2**63), 2**64


def _small(v: object) -> bool:
    """`_small_ints` for a value of any other type (a subclass, a list, a recipe)."""
    return (
        not isinstance(v, dict) and (not isinstance(v, int) or _INT64_MIN <= v < _UINT64_END)
        and (not isinstance(v, float) or math.isfinite(v))
    )


def parse_heartbeat(value: bytes | None, *, max_bytes: int | None = None) -> Heartbeat:
    """One heartbeat message value, or `BadMessage` (also over ``max_bytes``)."""
    if max_bytes is not None:
        too_large(value, max_bytes)
    beat = _parse(value, HEARTBEAT_SCHEMAS, Heartbeat)
    if beat.sent_at is None:
        raise BadMessage(f"invalid {beat.schema_} message: sent_at: missing")
    return beat


def too_large(value: bytes | None, limit: int) -> None:
    """`BadMessage` for a value over ``limit`` bytes: it is dead-lettered without being read."""
    if value is not None and len(value) > limit:
        raise BadMessage(
            f"too large: {len(value)} bytes, over classifier.max_message_bytes ({limit}); "
            "not parsed"
        )


def _text(raw: bytes, limit: int) -> str:
    """At most the first ``limit`` bytes as text: undecodable bytes replaced, and a character
    the cut splits left out (the incremental decoder keeps an incomplete tail to itself)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return decoder.decode(raw[:limit], final=len(raw) <= limit)


def dead_letter(
    *, reason: str, topic: str, partition: int, offset: int, key: bytes | None,
    value: bytes | None, at: datetime, head_bytes: int = DEAD_LETTER_HEAD_BYTES,
) -> dict[str, Any]:
    """The dead-letter message: the reason, where the message was, its key, and what identifies
    its value (size and SHA-256) with at most its first ``head_bytes`` bytes as text: never the
    whole value, so a dead letter stays small whatever was refused. The message itself stays
    in its topic (until the topic's retention), found by topic, partition and offset."""
    return {
        "schema": DLQ_SCHEMA,
        "reason": reason[:MAX_REASON_CHARS],
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": _text(key, MAX_KEY_BYTES) if key is not None else None,
        "key_bytes": len(key) if key is not None else None,
        "value_bytes": len(value) if value is not None else None,
        "value_sha256": hashlib.sha256(value).hexdigest() if value is not None else None,
        "value_head": _text(value, head_bytes) if value is not None else None,
        "value_truncated": value is not None and len(value) > head_bytes,
        "at": at.isoformat(),
    }


#: Dead letters whose sends fail for a reason that may pass (broker away, leader moving, the
#: topic's metadata not there yet) are sent again for this long, then given up: a dead letter
#: never holds the classifier's reading back for longer (a missing DLQ topic on a cluster that
#: creates none would otherwise hold it for ever).
DEAD_LETTER_PATIENCE_S = 120.0


class DeadLetters:
    """Sends the messages the classifier cannot read to the dead-letter topic, with the reason.

    Cannot fail: a dead letter is small (`dead_letter`), a send that fails for a reason that may
    pass is retried with capped backoff for at most `DEAD_LETTER_PATIENCE_S`, and one the broker
    refuses for good (or still cannot take after that) is given up: counted
    (``otwatch_classifier_dead_letters_dropped_total``), logged once per run of drops, and the
    classifier reads on.
    """

    def __init__(
        self, producer: AIOKafkaProducer, topic: str, status: health.Status,
        clock: Callable[[], datetime], *, head_bytes: int = DEAD_LETTER_HEAD_BYTES,
        patience_s: float = DEAD_LETTER_PATIENCE_S, backoff: Backoff | None = None,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._status = status
        self._clock = clock
        self._head_bytes = head_bytes
        self._patience_s = patience_s
        self._backoff = backoff or Backoff(first_s=0.5, cap_s=10.0)
        self._drops = OutageLog(
            log, f"dead letters to {topic} are being dropped (counted in "
            "otwatch_classifier_dead_letters_dropped_total)", f"dead letters to {topic} sent again",
        )

    async def send(self, refused: Sequence[tuple[Any, str]]) -> None:
        """Send one dead letter per (consumer record, reason); returns once each is acknowledged
        or given up, so the offsets after them may be committed. Never raises a Kafka error."""
        if not refused:
            return
        pending: list[tuple[bytes | None, bytes]] = [self._letter(msg, why) for msg, why in refused]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._patience_s
        self._backoff.reset()
        while pending:
            failures = await self._send_all(pending)
            retry = [(letter, exc) for letter, exc in failures if _may_pass(exc)]
            for _, exc in failures:
                if not _may_pass(exc) or loop.time() >= deadline:
                    self._drop(exc)
            if loop.time() >= deadline or not retry:
                break
            log.debug("dead letters not acknowledged yet (%s); sending again", retry[0][1])
            await asyncio.sleep(min(self._backoff.next(), max(0.0, deadline - loop.time())))
            pending = [letter for letter, _ in retry]

    def _letter(self, msg: Any, reason: str) -> tuple[bytes | None, bytes]:
        health.DEAD.labels(health.dead_letter_reason(reason)).inc()
        self._status.dead_letters += 1
        log.warning("dead letter %s/%d@%d: %s", msg.topic, msg.partition, msg.offset,
                    reason[:MAX_REASON_CHARS])
        body = dead_letter(
            reason=reason, topic=msg.topic, partition=msg.partition, offset=msg.offset,
            key=msg.key, value=msg.value, at=self._clock(), head_bytes=self._head_bytes,
        )
        key = msg.key[:MAX_KEY_BYTES] if msg.key is not None else None
        return key, orjson.dumps(body)

    async def _send_all(
        self, letters: list[tuple[bytes | None, bytes]]
    ) -> list[tuple[tuple[bytes | None, bytes], BaseException]]:
        """Send every letter (pipelined); the ones that failed, with why."""
        sent: list[tuple[tuple[bytes | None, bytes], asyncio.Future[Any]]] = []
        failed: list[tuple[tuple[bytes | None, bytes], BaseException]] = []
        for letter in letters:
            key, value = letter
            try:
                sent.append((letter, await self._producer.send(self._topic, value, key=key)))
            except Exception as exc:  # whatever the client raises: this path must not fail
                failed.append((letter, exc))
        results = await asyncio.gather(*(f for _, f in sent), return_exceptions=True)
        for (letter, _), result in zip(sent, results, strict=True):
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                failed.append((letter, result))
            else:
                self._drops.success()
        return failed

    def _drop(self, exc: BaseException) -> None:
        health.DEAD_DROPPED.inc()
        self._status.dead_letters_dropped += 1
        self._drops.failure(f"{type(exc).__name__}: {exc}")


def _may_pass(exc: BaseException) -> bool:
    """Whether sending the same dead letter again later may succeed (the broker or the topic's
    leader away, a timeout) rather than being refused for good (too large, not allowed, ...)."""
    if isinstance(exc, KafkaTimeoutError):
        return True  # (aiokafka marks it not retriable; here it means "not reachable yet")
    return isinstance(exc, KafkaError) and bool(exc.retriable)
