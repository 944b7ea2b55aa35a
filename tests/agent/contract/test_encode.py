"""The fast event encoder (`agent.contract.encode`) against the contract it stands for: for
generated events of every shape, its bytes are the canonical JSON of pydantic's
``model_dump(mode="json", by_alias=True)``, byte for byte; the bytes validate back
to the same event, and a signature made over them verifies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.contract import EventSigner, SuspectChange, verify_event
from agent.contract.encode import datetime_text, event_body, event_json, event_members
from agent.contract.values import canonical_json
from tests.agent.contract.test_fuzz_contract import tag_values
from tests.support.events import make_event

SIGNER = EventSigner.generate()
KEYS = {SIGNER.key_id: SIGNER.public_key_b64}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

offsets = st.one_of(
    st.just(UTC),
    st.none(),
    st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-23 * 60, 23 * 60)),
    # Not whole minutes: pydantic and the standard library write these differently.
    st.builds(lambda s: timezone(timedelta(seconds=s)), st.integers(-86_399, 86_399)),
    st.builds(lambda us: timezone(timedelta(microseconds=us)), st.integers(-999_999, 999_999)),
)
datetimes = st.builds(
    lambda d, tz: d.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), offsets,
)
texts = st.text(max_size=30)
names = st.text(min_size=1, max_size=12)


def _approval(valid_from: datetime, why: str | None) -> dict[str, Any]:
    return {"id": "CR-1", "valid_from": valid_from, "valid_until": valid_from,
            "approved_by": "qa", "change_control_ref": None, "why_not_matched": why}


events = st.builds(
    lambda old, new, context, occurred, detected, verdict, kind, reason, actor, approval, gap,
    snapshot, omitted, unit: make_event(
        old_value=old, new_value=new, context=context, occurred_at=occurred,
        detected_at=detected, verdict=verdict, change_kind=kind, verdict_reason=reason,
        actor=actor, approval=approval, gap=gap, snapshot=snapshot, omitted=omitted,
        tag={"unit": unit},
    ),
    tag_values, tag_values, st.dictionaries(names, tag_values, max_size=4), datetimes, datetimes,
    st.sampled_from(["authorized", "unapproved", "outside_window", "value_mismatch"]),
    st.sampled_from(["setpoint_change", "recipe_switch", "monitoring_gap", "mode_change"]),
    texts, st.none() | texts,
    st.none() | st.builds(_approval, datetimes, st.none() | texts),
    st.none() | st.builds(lambda a, b: {"start": a, "end": b}, datetimes, datetimes),
    st.none() | st.builds(
        lambda values: {"values": values, "sha256": "ab" * 32},
        st.dictionaries(names, tag_values, max_size=6),
    ),
    st.none() | st.lists(st.sampled_from(["snapshot.values", "context", "long texts"])),
    st.none() | texts,
)


def _pydantic_bytes(event: SuspectChange) -> bytes:
    return canonical_json(event.model_dump(mode="json", by_alias=True))


@SETTINGS
@given(events)
def test_the_object_and_bytes_are_pydantics(event: SuspectChange) -> None:
    assert event_json(event_body(event)) == _pydantic_bytes(event) == event.to_json()


@SETTINGS
@given(events)
def test_the_members_are_the_body_but_the_signature(event: SuspectChange) -> None:
    body = event_body(event)
    del body["signature"]
    assert event_members(event) == body


@SETTINGS
@given(events, st.integers(1, 2**40))
def test_signed_events_are_pydantics_bytes_and_validate(event: SuspectChange, seq: int) -> None:
    signed, raw = SIGNER.sign_to_json(event, seq=seq)
    assert raw == _pydantic_bytes(signed) == signed.to_json()
    # Validates (not always back to the same bytes: pydantic writes an offset of seconds as
    # ``+00:00`` and reads that as UTC, ``Z``; both before this encoder and with it).
    SuspectChange.model_validate_json(raw)
    assert verify_event(raw, KEYS).ok


@SETTINGS
@given(st.lists(events, min_size=2, max_size=5))
def test_batch_signed_events_are_pydantics_bytes(batch: list[SuspectChange]) -> None:
    for i, (event, raw) in enumerate(SIGNER.sign_batch(batch, first_seq=7)):
        assert event.seq == 7 + i
        body = orjson.loads(raw)
        assert canonical_json(body) == raw
        body.pop("signature")
        expected = orjson.loads(_pydantic_bytes(batch[i].model_copy(update={"seq": 7 + i})))
        assert expected.pop("signature") is None
        assert canonical_json(body) == canonical_json(expected)
        SuspectChange.model_validate_json(raw)
        assert verify_event(raw, KEYS).ok


def test_a_v1_event_is_written_with_its_empty_v2_fields() -> None:
    event = make_event(schema="otwatch.change/1")
    assert event.to_json() == _pydantic_bytes(event)
    assert orjson.loads(event.to_json())["signature"] is None


@SETTINGS
@given(datetimes)
def test_datetimes_are_written_as_pydantic_writes_them(at: datetime) -> None:
    assert f'"{datetime_text(at)}"'.encode() == SuspectChange.__pydantic_serializer__.to_json(
        make_event(occurred_at=at)
    ).split(b'"occurred_at":')[1].split(b",")[0]
