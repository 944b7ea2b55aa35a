"""Fuzzing what the classifier reads (issue 14, fuzzing): arbitrary bytes, arbitrary JSON,
near-valid events (wrong types, missing and unknown fields, huge values, NaN written every way,
bad signatures). Each message is judged as the group consumer judges it (`judge_event`): the
event it says, a forged-event finding, or `BadMessage` with a reason; never another exception.
Then it goes where the consumer sends it, through the real `Recorder` into a real SQLite
records store and the real broker: a bad message writes nothing to the store, an event or a
finding is recorded once and its evidence keeps the bytes as they arrived.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from agent.contract import EventSigner, SuspectChange
from agent.kafka.settings import TopicNames
from detectors import health
from detectors.correlate import NO_CONTEXT
from detectors.criteria import load_criteria
from detectors.errors import BadMessage
from detectors.integrity import Finding
from detectors.messages import MAX_NAME_CHARS, DeadLetters, parse_event
from detectors.recorder import Recorder
from detectors.records import open_store
from detectors.signatures import TrustedAgents, judge_event
from detectors.store_retry import RetryingStore
from simulators.broker import EmbeddedBroker
from tests.detectors.running import AGENT, create_topics, signed
from tests.detectors.running import settings as kafka_settings
from tests.detectors.test_dead_letters import record
from tests.support.events import make_event

pytestmark = pytest.mark.e2e
CRITERIA = load_criteria(Path(__file__).parents[2] / "config" / "criteria.yaml")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
LIMIT = 256 * 1024
TRUSTED = TrustedAgents({AGENT.key_id: AGENT.public_key_b64}, require_signed=True)
STRANGER = EventSigner.generate()
FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

# --- what is fed in ------------------------------------------------------------------------

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
           | st.floats(allow_nan=False) | st.text(max_size=20))
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=16)

#: Text replacing a value in an event's JSON: NaN and the infinities written every way, values
#: too large or too deep, texts no database likes.
ODD_VALUES = st.sampled_from([
    "NaN", "Infinity", "-Infinity", "nan", '{"$float":"NaN"}', '{"$float":"-Infinity"}',
    '{"$float":"nan"}', '{"$float":1}', '{"$float":"NaN","x":1}', '{"$truncated":{}}',
    '{"$truncated":{"sha256":"00","length":-1,"head":""}}', "1e400", "-0.0",
    "123456789012345678901234567890", "18446744073709551616", '"\\u0000"', '"\\ud800"',
    '"' + "x" * 300_000 + '"', "[" * 300 + "]" * 300, '{"a":' * 100 + "1" + "}" * 100,
    '"\\u202e\\u0000\\uffff"', "true", "null", '""', "[]", "{}",
])
FIELDS = ["schema", "event_id", "seq", "agent_id", "site", "line", "controller", "tag",
          "old_value", "new_value", "occurred_at", "detected_at", "change_kind", "verdict",
          "verdict_reason", "approval", "context", "actor", "gap", "snapshot", "omitted",
          "signature", "unknown_field"]


def _body(event: SuspectChange, how: str) -> dict[str, Any]:
    raw = {"signed": signed(event)[1], "stranger": signed(event, STRANGER)[1],
           "unsigned": event.to_json()}[how]
    body: dict[str, Any] = orjson.loads(raw)
    return body


@st.composite
def near_valid(draw: st.DrawFn) -> bytes:
    """A real event, signed or not, with one field replaced, removed or added, or written as
    JSON text with one value swapped for an odd one."""
    event = make_event(context={"lot": "L-1"}, actor="j.doe")
    body = _body(event, draw(st.sampled_from(["signed", "stranger", "unsigned"])))
    field = draw(st.sampled_from(FIELDS))
    how = draw(st.sampled_from(["replace", "remove", "odd", "nested"]))
    if how == "remove":
        body.pop(field, None)
    elif how == "replace":
        body[field] = draw(json_values)
    elif how == "nested" and isinstance(body.get(field), dict):
        inner = body[field]
        inner[draw(st.sampled_from(sorted(inner) or ["x"]))] = draw(json_values)
    else:
        body[field] = "__ODD__"
        text = json.dumps(body).replace('"__ODD__"', draw(ODD_VALUES))
        return text.encode("utf-8", "surrogatepass")
    return json.dumps(body).encode()


names = st.text(min_size=1, max_size=40)
tag_values = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
              | st.floats() | st.text(max_size=2_000) | st.just("x" * 100_000)
              | st.dictionaries(st.text(max_size=8), st.floats() | st.integers(), max_size=5))


@st.composite
def events(draw: st.DrawFn) -> bytes:
    """A well-formed event with drawn names and values (NaN, infinities, long texts, recipes,
    any characters), signed by the trusted agent, by a stranger, or not at all."""
    event = make_event(
        site=draw(names), line=draw(names), agent_id=draw(names), event_id=draw(names),
        controller={"id": draw(names)}, tag={"name": draw(names), "unit": draw(names)},
        old_value=draw(tag_values), new_value=draw(tag_values), actor=draw(st.none() | names),
        verdict_reason=draw(st.text(max_size=200)),
        context=draw(st.dictionaries(names, tag_values, max_size=3)),
    )
    how = draw(st.sampled_from(["signed", "signed", "stranger", "unsigned"]))
    return orjson.dumps(_body(event, how)) if how != "signed" else signed(event)[1]


messages = (
    events()
    | events()
    | st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | near_valid()
    | st.sampled_from([None, b"", b"\xef\xbb\xbf{}", b'{"schema":"otwatch.change/2"}',
                       b"\x00" * 10, b"x" * (LIMIT + 1)])
)

# --- the consumer's path, with the real parts ------------------------------------------------


@dataclass
class Intake:
    """The group consumer's path for one message: judge, dead-letter or record."""

    runner: asyncio.Runner
    recorder: Recorder
    dead_letters: DeadLetters
    db: Path
    offset: int = 0

    def take(self, value: bytes | None) -> str:
        self.offset += 1
        try:
            judged = judge_event(value, max_bytes=LIMIT, trusted=TRUSTED, now=NOW)
        except BadMessage as exc:
            reason = str(exc)
            assert reason and reason.isprintable() and len(reason) < 2_000, reason
            self.runner.run(self.dead_letters.send([(record(value, offset=self.offset), reason)]))
            return "bad"
        token = (TopicPartition("otwatch.changes.suspect", 0), self.offset, value or b"")
        placed = ([(judged.event, judged.context, token)] if isinstance(judged, Finding)
                  else [(judged, NO_CONTEXT, token)])
        acked = self.runner.run(self.recorder.record(placed, NOW))
        self.runner.run(_wait(acked))
        return "finding" if isinstance(judged, Finding) else "event"

    def processed(self) -> list[str]:
        with sqlite3.connect(self.db) as conn:
            return [r[0] for r in conn.execute("SELECT event_id FROM processed_events")]

    def evidence(self) -> list[bytes]:
        with sqlite3.connect(self.db) as conn:
            return [r[0].encode() for r in conn.execute("SELECT raw FROM evidence")]


async def _wait(acked: Any) -> None:
    await acked


async def _started_producer(bootstrap: str) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(**kafka_settings(bootstrap).producer_kwargs())
    await producer.start()
    return producer


@pytest.fixture
def intake(tmp_path: Path) -> Iterator[Intake]:
    """One broker, one producer, one records store for every example of a test."""
    with EmbeddedBroker() as broker, asyncio.Runner() as runner:
        runner.run(create_topics(broker.bootstrap))
        producer = runner.run(_started_producer(broker.bootstrap))
        db = tmp_path / "records.db"
        store = open_store(str(db))
        store.migrate()
        status = health.Status(None)
        recorder = Recorder(producer, TopicNames(), CRITERIA,
                            RetryingStore(str(db), store=store), status, lambda: NOW)
        letters = DeadLetters(producer, "otwatch.dlq", status, lambda: NOW)
        try:
            yield Intake(runner, recorder, letters, db)
        finally:
            runner.run(producer.stop())
            store.close()


@FUZZ
@given(value=messages)
def test_every_message_is_an_event_a_finding_or_a_dead_letter_and_only_those_are_kept(
    intake: Intake, value: bytes | None
) -> None:
    before = intake.processed()
    outcome = intake.take(value)
    event(outcome)  # how the examples spread (--hypothesis-show-statistics)
    after = intake.processed()
    if outcome == "bad":
        assert after == before, "a bad message wrote to the records store"
        return
    new = set(after) - set(before)
    assert len(after) == len(set(after)) and len(new) <= 1  # once, or recognised again
    kept = intake.evidence()
    if new:
        assert value in kept, "the evidence keeps the message as it arrived"
    for raw in kept:
        orjson.loads(raw)  # every piece of evidence reads back


@FUZZ
@given(value=near_valid())
def test_a_near_valid_event_is_judged_the_same_however_it_is_parsed(value: bytes) -> None:
    """The fast path (pydantic on the bytes) and the careful one (orjson, then pydantic) agree,
    and an accepted event survives its own JSON (what the evidence and alerts are made of)."""
    try:
        event = parse_event(value, max_bytes=LIMIT)
    except BadMessage:
        return
    assert SuspectChange.model_validate_json(event.to_json()) == event
    try:
        judged = judge_event(value, max_bytes=LIMIT, trusted=TRUSTED, now=NOW)
    except BadMessage as exc:  # pragma: no cover - parse_event already took it
        raise AssertionError(exc) from exc
    if isinstance(judged, SuspectChange):
        assert judged.signature is not None and judged.signature.key_id == AGENT.key_id


@pytest.fixture
def pg_store(pg_dsn: str) -> Iterator[RetryingStore]:
    import uuid

    import psycopg

    schema = f"t_{uuid.uuid4().hex}"
    store = open_store(pg_dsn, schema=schema)
    store.migrate()
    yield RetryingStore(pg_dsn, store=store)
    store.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


#: A name of 10,240 characters nothing compresses: PostgreSQL cannot index it.
TOO_LONG = "".join(hashlib.sha256(bytes([i])).hexdigest() for i in range(160))
longest = st.text(min_size=MAX_NAME_CHARS, max_size=MAX_NAME_CHARS,
                  alphabet=st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF)
                  ) | st.just(TOO_LONG) | st.just("site\x00")


@pytest.mark.pg
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.large_base_example, HealthCheck.data_too_large])
@given(site=longest | names, controller=longest | names, event_id=longest | names,
       value=tag_values)
def test_whatever_the_classifier_takes_postgresql_can_keep(
    pg_store: RetryingStore, site: str, controller: str, event_id: str, value: Any
) -> None:
    """Names at the longest the parser takes (four bytes a character, nothing to compress),
    values with NUL characters: PostgreSQL refused a 10 kB id (index row too large) and a NUL
    in a name (text cannot hold it), and the classifier crashed on such an event at every
    start. Whatever `judge_event` takes, PostgreSQL stores."""
    from detectors.criteria import classify

    event = make_event(site=site, controller={"id": controller}, event_id=event_id,
                       new_value=value, old_value="a\u0000b", context={"lot": "\u0000"})
    raw = signed(event)[1]
    try:
        judged = judge_event(raw, max_bytes=LIMIT, trusted=TRUSTED, now=NOW)
    except BadMessage:
        return
    assert isinstance(judged, SuspectChange)
    item = [(judged, classify(judged, CRITERIA))]
    asyncio.run(pg_store.call(lambda s: s.record_events(item, now=NOW, raw=[raw])))
    event_ids = asyncio.run(pg_store.call(
        lambda s: [e.event_id for r in s.list_records() for e in r.evidence]))
    assert event_id in event_ids
