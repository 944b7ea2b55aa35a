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
import copy
import hashlib
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

import orjson
import pydantic_core
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError
from pydantic import BaseModel, ValidationError
from pydantic_core import SchemaValidator

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
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{_shown(p[:40])}" for p in where)
    return _BARE_NUMBER.format(where=path[1:] if path.startswith(".") else path)


def _shown(name: str) -> str:
    """A member's name as a refusal can carry it (a dead letter's reason is one printable
    line): control characters escaped."""
    return name if name.isprintable() else repr(name)[1:-1]


def _bare_number_at(node: object, where: tuple[str | int, ...]) -> tuple[str | int, ...] | None:
    if isinstance(node, float):
        return None if math.isfinite(node) else where
    if isinstance(node, int):  # (orjson reads one beyond 64 bits as a float)
        try:
            float(node)
        except OverflowError:
            return where
        return None
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


def parse_event(value: bytes | None, *, max_bytes: int | None = None) -> SuspectChange:
    """One Kafka message value to an event, or `BadMessage` with a reason a person can act on.

    A value over ``max_bytes`` is refused unread (`too_large`).

    ``model_validate_json`` on the bytes costs half of ``orjson.loads`` plus ``model_validate``,
    so it decides alone for a message with no escaped code point (`_unescaped`), with the
    schema required and the top-level names' and texts' limits in the validator itself
    (`_validate_limited`), once a glance finds no value that orjson would read otherwise
    (`_values_plain`) and the other names within their limits (`_names_glance`). Everything
    else goes the careful way, which names the problem for the dead-letter topic.
    (A hand-written reader, ``orjson.loads`` plus exact type checks plus building the frozen
    models directly, was measured at 13 µs against pydantic's 8: pydantic-core builds the three
    models faster than Python can.)
    """
    if value is None:
        return _parse(value, CHANGE_SCHEMAS, SuspectChange)  # (refused: a tombstone)
    if max_bytes is not None and len(value) > max_bytes:
        too_large(value, max_bytes)
    if _unescaped(value):
        try:
            event: SuspectChange = _validate_limited(value)
        except ValidationError:
            pass
        else:
            if _values_plain(event):
                # (a NUL character is always escaped in JSON: an unescaped message holds none)
                return event if _names_glance(event) else _names_fit(event, nul_possible=False)
    return _names_fit(_parse(value, CHANGE_SCHEMAS, SuspectChange), nul_possible=True)


#: The longest name the classifier takes (ids, sites, lines, controllers, tags, addresses,
#: actors): far above any real one, and within what every records database can index.
MAX_NAME_CHARS = 256
#: The longest free text (verdict reasons, why an approval did not match).
MAX_TEXT_CHARS = 16_384
#: The event's names and texts, each with its limit, in the order a refusal looks at them.
_LIMITS = (
    *((name, MAX_NAME_CHARS) for name in (
        "event_id", "agent_id", "site", "line", "controller.id", "controller.endpoint",
        "tag.name", "tag.address", "tag.unit", "actor", "approval.id", "approval.approved_by",
        "approval.change_control_ref",
    )),
    ("verdict_reason", MAX_TEXT_CHARS), ("approval.why_not_matched", MAX_TEXT_CHARS),
)


def _names_fit(event: SuspectChange, *, nul_possible: bool) -> SuspectChange:
    """The event, if its names and texts are ones a records database can keep: no name over
    `MAX_NAME_CHARS` (PostgreSQL cannot index an id of 10 kB), no text over `MAX_TEXT_CHARS`,
    and no NUL character (PostgreSQL text cannot hold one). Values may hold anything."""
    fields = [(where, _at(event, where), limit) for where, limit in _LIMITS]
    fields[-2:-2] = [(f"context key {key[:40]!r}", key, MAX_NAME_CHARS) for key in event.context]
    for where, text, limit in fields:
        if text is None:
            continue
        if len(text) > limit:
            raise BadMessage(f"invalid {event.schema_} message: {where}: {len(text)} "
                             f"characters, over {limit}")
        if nul_possible and "\x00" in text:
            raise BadMessage(f"invalid {event.schema_} message: {where}: contains a NUL "
                             "character")
    return event


def _at(event: SuspectChange, where: str) -> str | None:
    """The text at a dotted place of the event (None where a part on the way is missing)."""
    node: Any = event
    for part in where.split("."):
        node = getattr(node, part)
        if node is None:
            return None
    return cast(str, node)


def _names_glance(event: SuspectChange) -> bool:
    """True when the names `_validate_limited` does not limit (those of the controller and
    the tag, the context keys) are within `MAX_NAME_CHARS` and there is no approval: a few
    ``len`` calls. False means only "look the longer way" (`_names_fit`, which names what is
    wrong)."""
    controller, tag, context = event.controller, event.tag, event.context
    unit = tag.unit
    return (  # (``len`` calls and ``and``: a ``max`` of them cost twice as much)
        event.approval is None
        and len(controller.id) <= MAX_NAME_CHARS and len(controller.endpoint) <= MAX_NAME_CHARS
        and len(tag.name) <= MAX_NAME_CHARS and len(tag.address) <= MAX_NAME_CHARS
        and (unit is None or len(unit) <= MAX_NAME_CHARS)
        and (not context or max(map(len, context)) <= MAX_NAME_CHARS)
    )


def _limited_validator() -> SchemaValidator:
    """`SuspectChange`'s validator with ``schema`` required (the model defaults it, and the
    classifier refuses a message without one) and the limit of each top-level name and text
    (`_LIMITS`) on its string: pydantic-core checks them as it reads. An event over one goes
    the careful way, which names what is wrong. (The nested models' limits cannot go there:
    pydantic-core builds a nested model with the validator its class already has.)"""
    schema = copy.deepcopy(SuspectChange.__pydantic_core_schema__)
    node = schema
    while node["type"] != "model-fields":  # (through the model's validator and the model)
        node = node["schema"]
    fields = node["fields"]
    fields["schema_"]["schema"] = fields["schema_"]["schema"]["schema"]  # (its default gone)
    for where, limit in _LIMITS:
        if "." not in where:
            string = fields[where]["schema"]
            while string["type"] != "str":  # (through a default and a nullable)
                string = string["schema"]
            string["max_length"] = limit
    return SchemaValidator(schema)


#: What ``SuspectChange.model_validate_json`` calls (without the wrapper's checks of its
#: arguments), with `_LIMITS` and ``schema`` required (`_limited_validator`).
_validate_limited = _limited_validator().validate_json


def _unescaped(value: bytes) -> bool:
    """No escaped code point (``\\u``): a text pydantic's parser and orjson may judge
    differently (a lone surrogate), or a NUL character. The store keeps the message as
    evidence, which must load with orjson again.

    The backslash is looked for first (``memchr``: a fifth of the cost of a two-byte search):
    an event holds almost none, and the ``\\u`` search alone cost 1.5 µs in a signed one."""
    return b"\\" not in value or b"\\u" not in value


def _values_plain(event: SuspectChange) -> bool:
    """No value pydantic's parser may have read otherwise than orjson: no NaN or infinity
    (`_finite`) in ``old_value``, ``new_value``, ``context`` or the snapshot. False means only
    "let the careful way decide" (orjson refuses a bare one, and reads the agent's spelling).
    (Integers need no look: the values' validator keeps those of 64 bits and turns larger ones
    into floats, as orjson reads them; the model holds ``seq`` within 0 .. 2**63 - 1.)"""
    old, new, context, snapshot = event.old_value, event.new_value, event.context, event.snapshot
    return (
        (old - old == 0.0 if type(old) is float else _finite(old))
        and (new - new == 0.0 if type(new) is float else _finite(new))
        and (not context or _finite(context))
        and (snapshot is None or _finite_numbers(snapshot.values))
    )


def _finite(value: object) -> bool:
    """No NaN or infinity in ``value`` (a tag value, recipes and arrays included, or a mapping
    of them). pydantic's parser reads a bare ``NaN``, ``Infinity`` or ``1e400`` as one, and
    orjson refuses them; the agent's ``{"$float": "NaN"}`` reads as one too. False means only
    "let orjson decide" (the careful way), which tells the two apart."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(map(_finite, value.values()))
    if isinstance(value, list):
        return all(map(_finite, value))
    return True


def _finite_numbers(values: dict[str, Any]) -> bool:
    """`_finite` of a mapping of mostly numbers (a snapshot's values): one pass in C first."""
    try:
        return all(map(math.isfinite, values.values()))
    except (TypeError, OverflowError):  # (a text, a recipe, ...)
        return _finite(values)


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
