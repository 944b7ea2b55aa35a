"""Fuzzing the event contract (hypothesis): whatever arrives, parsing gives an event or a
`ValidationError` (the classifier turns it into a dead letter with the reason), and checking a
signature gives a status; neither ever raises anything else. Every event the agent can build
is written, read back and verified identically."""

from __future__ import annotations

import math
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agent.contract import (
    EventLimits,
    EventSigner,
    SignatureStatus,
    SuspectChange,
    fit_event,
    verify_event,
)
from tests.support.events import make_event

SIGNER = EventSigner.generate()
KEYS = {SIGNER.key_id: SIGNER.public_key_b64}
SMALL = EventLimits(max_value_bytes=1024, max_event_bytes=20 * 1024, head_chars=16)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
#: Mapping keys: any text but the two reserved markers (`agent.contract.values`: a member
#: named ``$float`` or ``$truncated`` alone in its mapping is read as the marker; hypothesis
#: found that a plain value ``{"$truncated": None}`` then cannot round-trip).
keys = st.text(max_size=10).filter(lambda k: k not in ("$float", "$truncated"))
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=5)
    ),
    max_leaves=20,
)
#: What a tag value can be in Python (a mapping may hold lists), markers included.
tag_values = st.one_of(
    scalars,
    st.dictionaries(keys, json_like, max_size=5),
    st.builds(lambda n: {"$float": n}, st.sampled_from(["NaN", "Infinity", "-Infinity"])),
    st.text(min_size=1100, max_size=3000),
)
PLAIN = orjson.loads(make_event().to_json())


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_fail_with_a_validation_error(raw: bytes) -> None:
    try:
        SuspectChange.model_validate_json(raw)
    except ValidationError:
        pass
    assert verify_event(raw, KEYS).status is not SignatureStatus.VALID


@FUZZ
@given(st.sampled_from(sorted(PLAIN)), json_like)
def test_any_field_with_any_value_parses_or_fails_with_a_validation_error(
    field: str, value: Any
) -> None:
    body = {**PLAIN, field: value}
    try:
        event = SuspectChange.model_validate(body)
    except ValidationError:
        return
    again = SuspectChange.model_validate_json(event.to_json())
    assert again.to_json() == event.to_json()


@FUZZ
@given(tag_values, tag_values, st.dictionaries(st.sampled_from(["lot", "batch"]), tag_values))
def test_every_value_the_agent_can_send_round_trips_signed(
    old: Any, new: Any, context: dict[str, Any]
) -> None:
    event = fit_event(make_event(old_value=old, new_value=new, context=context), SMALL)
    signed, raw = SIGNER.sign_to_json(event)
    assert len(raw) <= SMALL.max_event_bytes
    assert verify_event(raw, KEYS).ok
    back = SuspectChange.model_validate_json(raw)
    assert back.to_json() == raw
    assert _nan_aware_equal(back.new_value, signed.new_value)


@FUZZ
@given(st.data())
def test_a_changed_byte_verifies_only_if_it_says_the_same(data: st.DataObject) -> None:
    """The signature is over the content: another spelling of the same JSON (``230e0`` for
    ``230.0``) verifies, any other change does not; nothing raises."""
    signed = SIGNER.sign(make_event()).to_json()
    raw = bytearray(signed)
    at = data.draw(st.integers(0, len(raw) - 1))
    raw[at] = data.draw(st.integers(0, 255).filter(lambda b: b != raw[at]))
    check = verify_event(bytes(raw), KEYS)
    assert check.reason
    if check.ok:
        assert orjson.loads(bytes(raw)) == orjson.loads(signed)


@FUZZ
@given(json_like)
def test_any_signature_member_is_a_named_failure(member: Any) -> None:
    body = {**orjson.loads(SIGNER.sign(make_event()).to_json()), "signature": member}
    check = verify_event(body, KEYS)
    assert check.status is not SignatureStatus.VALID and check.reason


def _nan_aware_equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_nan_aware_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_nan_aware_equal, a, b))
    return bool(a == b)


@FUZZ
@given(st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1,
               max_size=5), st.text(max_size=10))
def test_a_lone_surrogate_is_written_as_a_replacement_and_verifies(bad: str, good: str) -> None:
    """(Two surrogates that make a pair are the character they encode.)"""
    raw = SIGNER.sign(make_event(new_value=good + bad, actor=bad)).to_json()
    assert verify_event(raw, KEYS).ok
    back = SuspectChange.model_validate_json(raw)
    assert isinstance(back.new_value, str) and back.new_value.startswith(good)
    back.new_value.encode("utf-8")  # no lone surrogate left
    if len(bad) == 1:
        assert back.new_value == good + "\ufffd"
