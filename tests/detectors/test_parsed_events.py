"""The suspect topic's events are parsed once for both readers (`detectors.parsed_events`).

The group consumer (`judge_event`) and the integrity reader (`IntegrityReader._saw`) share
`TrustedAgents.parsed_events`: whichever reads a message first parses it, the other gets the
very same event. What sharing must never change: a refusal and its reason (too large, not an
event), the trust judged on every read (a forged message, a key no longer trusted), the bound.
`parse_event` is wrapped (the real one, counted) to see when the parsing is done. No broker.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from agent.contract import SignatureStatus, SuspectChange
from detectors import health, parsed_events
from detectors.config import ClassifierConfig, IntegritySection
from detectors.criteria import load_criteria
from detectors.errors import BadMessage
from detectors.integrity import Finding
from detectors.integrity_reader import IntegrityReader
from detectors.messages import parse_event
from detectors.parsed_events import ParsedEvents
from detectors.signatures import TrustedAgents
from detectors.suspects import SuspectConsumer
from tests.detectors.running import AGENT, signed
from tests.support.events import make_event

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
LIMIT = 1 << 20
CONFIG = ClassifierConfig(integrity=IntegritySection(start_from="earliest"))
CRITERIA = load_criteria(Path(__file__).parents[2] / "config" / "criteria.yaml")
SUSPECT = CONFIG.topics.suspect
TP = TopicPartition(SUSPECT, 0)


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes | None]]:
    """The values `parse_event` is asked to parse through the memo (the real one answers)."""
    asked: list[bytes | None] = []

    def counted(value: bytes | None, **kwargs: Any) -> SuspectChange:
        asked.append(value)
        return parse_event(value, **kwargs)

    monkeypatch.setattr(parsed_events, "parse_event", counted)
    yield asked


def _trusted() -> TrustedAgents:
    return TrustedAgents({AGENT.key_id: AGENT.public_key_b64}, require_signed=True)


def _reader(trusted: TrustedAgents) -> IntegrityReader:
    # (no recorder: `_saw` records nothing, findings are recorded by `_record_findings`)
    return IntegrityReader(CONFIG, None, trusted, health.Status(None),  # type: ignore[arg-type]
                           lambda: NOW)


def _consumer(trusted: TrustedAgents) -> SuspectConsumer:
    # (no recorder, no dead letters: `_judge` only parses and judges)
    return SuspectConsumer(CONFIG, CRITERIA.burst, None, None,  # type: ignore[arg-type]
                           trusted, health.Status(None), lambda: NOW)


def _messages(values: tuple[bytes, ...], first: int, topic: str = SUSPECT) -> list[Any]:
    """Messages at offsets ``first``... of partition 0, each reader with its own copies."""
    return [SimpleNamespace(topic=topic, partition=0, offset=first + i,
                            value=bytes(bytearray(v)), timestamp=-1)
            for i, v in enumerate(values)]


def _read(reader: IntegrityReader, *values: bytes, first: int = 0) -> None:
    """The integrity reader takes ``values`` from the suspect topic."""
    reader._saw(TP, _messages(values, first), NOW)


def _consume(consumer: SuspectConsumer, *values: bytes, first: int = 0) -> list[Any]:
    """The group consumer's verdicts on ``values`` (events, findings, refusals)."""
    return [verdict for _, _, verdict in consumer._judge({TP: _messages(values, first)}, NOW)]


def _seqs(reader: IntegrityReader) -> set[int]:
    """The seqs the reader counted (a trusted event's), below and above the baseline."""
    seen = reader.agents._agents.get(make_event().agent_id)
    return set() if seen is None else seen.above


def _signed(**overrides: Any) -> bytes:
    return signed(make_event(**overrides))[1]


def _tampered() -> bytes:
    body = orjson.loads(_signed(seq=7))
    body["new_value"] = 999.0  # a forger's edit after signing
    return orjson.dumps(body)


def test_the_second_reader_gets_the_event_the_first_one_parsed(
    parses: list[bytes | None],
) -> None:
    raw = _signed()
    memo = ParsedEvents(8)
    first = memo.parse(raw, max_bytes=LIMIT, keep=True)
    second = memo.parse(bytes(bytearray(raw)), max_bytes=LIMIT, keep=True)  # the other copy
    assert second is first and first == parse_event(raw)
    assert parses == [raw] and (memo.hits, memo.misses) == (1, 1)
    assert len(memo) == 0  # both have read it: nothing kept


@pytest.mark.parametrize("value", [None, b"{not json", b'{"schema":"otwatch.change/2"}'],
                         ids=["tombstone", "not-json", "not-an-event"])
def test_a_refusal_is_the_same_for_each_reader_and_never_remembered(
    parses: list[bytes | None], value: bytes | None
) -> None:
    with pytest.raises(BadMessage) as expected:
        parse_event(value, max_bytes=LIMIT)
    memo = ParsedEvents(8)
    for _ in range(2):
        with pytest.raises(BadMessage) as refused:
            memo.parse(value, max_bytes=LIMIT, keep=True)
        assert str(refused.value) == str(expected.value)
    assert len(memo) == 0 and memo.hits == 0


def test_a_message_over_the_limit_is_refused_even_when_remembered() -> None:
    raw = _signed()
    memo = ParsedEvents(8)
    memo.parse(raw, max_bytes=LIMIT, keep=True)
    with pytest.raises(BadMessage) as refused:
        memo.parse(raw, max_bytes=len(raw) - 1, keep=True)
    with pytest.raises(BadMessage) as expected:
        parse_event(raw, max_bytes=len(raw) - 1)
    assert str(refused.value) == str(expected.value) and memo.hits == 0


def test_the_memo_is_bounded_oldest_first(parses: list[bytes | None]) -> None:
    values = [_signed(seq=seq) for seq in range(1, 6)]
    memo = ParsedEvents(3)
    for value in values:
        memo.parse(value, max_bytes=LIMIT, keep=True)
    assert len(memo) == 3
    parses.clear()
    for value in values[2:] + values[:2]:  # the two oldest were forgotten: parsed again
        memo.parse(value, max_bytes=LIMIT, keep=True)
    assert parses == values[:2] and memo.hits == 3


def test_a_memo_of_no_size_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ParsedEvents(0)


@pytest.mark.parametrize("consumer_first", [True, False], ids=["consumer-first", "reader-first"])
def test_both_readers_share_one_parse_and_each_judges_the_trust(
    parses: list[bytes | None], consumer_first: bool
) -> None:
    good, forged = _signed(seq=5), _tampered()
    trusted = _trusted()
    reader, consumer = _reader(trusted), _consumer(trusted)
    _consume(consumer, _signed(seq=1))  # each has read the partition: each keeps for the other
    _read(reader, _signed(seq=1))
    parses.clear()
    if not consumer_first:
        _read(reader, good, forged, first=1)
    verdicts = _consume(consumer, good, forged, first=1)
    if consumer_first:
        _read(reader, good, forged, first=1)
    assert isinstance(verdicts[0], SuspectChange) and verdicts[0].seq == 5
    assert isinstance(verdicts[1], Finding)  # the forged one, through the memo or not
    assert "does not match" in (verdicts[1].event.verdict_reason or "")
    assert _seqs(reader) == {1, 5}  # the forged seq 7 proves nothing
    assert parses == [good, forged] and trusted.parsed_events.hits == 2
    assert len(trusted.parsed_events) == 0


def test_nothing_is_kept_for_a_reader_that_does_not_come(parses: list[bytes | None]) -> None:
    values = tuple(_signed(seq=seq) for seq in range(1, 4))
    trusted = _trusted()
    reader, consumer = _reader(trusted), _consumer(trusted)
    _consume(consumer, *values)  # the integrity reader has read none of the partition
    assert len(trusted.parsed_events) == 0
    _read(reader, *values[1:], first=1)  # the group consumer has read these already
    assert len(trusted.parsed_events) == 0 and trusted.parsed_events.hits == 0
    assert parses == [*values, *values[1:]]


def test_nothing_is_kept_for_the_group_consumer_once_its_partition_is_revoked() -> None:
    trusted = _trusted()
    reader, consumer = _reader(trusted), _consumer(trusted)
    _consume(consumer, _signed(seq=1))
    consumer.revoked({TP})
    _read(reader, _signed(seq=1), _signed(seq=2))  # seq 2 is above the consumer's last read
    assert len(trusted.parsed_events) == 0


def test_a_key_no_longer_trusted_is_not_trusted_through_the_shared_parse() -> None:
    raw = _signed(seq=3)
    trusted = _trusted()
    reader, consumer = _reader(trusted), _consumer(trusted)
    _read(reader, _signed(seq=1))
    assert isinstance(_consume(consumer, raw, first=1)[0], SuspectChange)
    del trusted.keys[AGENT.key_id]
    _read(reader, raw, first=1)  # a hit: the event the group consumer parsed, judged again
    assert trusted.parsed_events.hits == 1 and _seqs(reader) == {1}  # seq 3 not counted
    _read(reader, _signed(seq=4), first=2)
    assert isinstance(_consume(consumer, raw, first=2)[0], Finding)
    check = trusted.check(raw, parse_event(raw))
    assert check is not None and check.status is SignatureStatus.UNKNOWN_KEY


def test_the_authorized_topic_is_not_remembered(parses: list[bytes | None]) -> None:
    raw = _signed(seq=4)
    trusted = _trusted()
    reader = _reader(trusted)
    # (only the integrity reader reads it: no second reader)
    reader._saw(TopicPartition(CONFIG.topics.authorized, 0),
                _messages((raw,), 0, CONFIG.topics.authorized), NOW)
    assert _seqs(reader) == {4} and len(trusted.parsed_events) == 0 and parses == []


def test_the_memo_is_bounded_by_bytes_and_never_keeps_a_large_message(
    parses: list[bytes | None],
) -> None:
    # Kept before any trust check: a writer of the topic must not fill it with large events.
    values = [_signed(seq=seq) for seq in range(1, 6)]
    memo = ParsedEvents(100, max_bytes=2 * max(map(len, values)))
    for value in values:
        memo.parse(value, max_bytes=LIMIT, keep=True)
    assert len(memo) == 2 and memo.bytes == sum(map(len, values[3:]))
    large = orjson.dumps({**orjson.loads(values[0]), "seq": 9,
                          "context": {"note": "x" * (parsed_events.KEEP_AT_MOST + 1)}})
    memo.parse(large, max_bytes=LIMIT, keep=True)
    assert len(memo) == 2 and memo.bytes == sum(map(len, values[3:]))  # not kept
    parses.clear()
    for value in values[3:]:  # the two newest are answered; their bytes leave the count
        memo.parse(value, max_bytes=LIMIT, keep=True)
    assert parses == [] and memo.bytes == 0


def test_a_reader_that_starts_again_has_nothing_kept_for_it() -> None:
    trusted = _trusted()
    reader, consumer = _reader(trusted), _consumer(trusted)
    _read(reader, _signed(seq=1))
    trusted.parsed_events.forget("watch")  # what `IntegrityReader.run` does when it starts
    _consume(consumer, _signed(seq=1), _signed(seq=2))  # above where the old run had read
    assert len(trusted.parsed_events) == 0
