"""`parse_event`'s common-event shortcut decides exactly as the parse before it did.

The reference below is `parse_event` as it was before its shortcuts (the common-event glance,
the bound validator, the limited validator and the values' glance):
``SuspectChange.model_validate_json`` for a plain message, then `small_ints` and `_names_fit`,
else the careful way. Hypothesis feeds both the same bytes:
valid events (schema v1 and v2, unsigned, signed, signed in a Merkle batch, with approval,
gap, context, recipes, snapshot), the same events broken (fields removed, replaced by a value
of the wrong type or added, times spelled every way, NaN and infinities, huge integers,
non-UTF-8 bytes, cut short) and arbitrary bytes. Each result must be the same: the same event
(its fields, types and time zones, as ``repr`` shows them, and the same fields given), or the
same refusal with the same reason. Pure: no broker.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from agent.contract import CHANGE_SCHEMAS, SCHEMA, SCHEMA_V1, EventSigner, SuspectChange
from detectors import messages
from detectors.errors import BadMessage
from detectors.signatures import TrustedAgents, judge_event
from tests.support.events import WORKDAY, make_event

SIGNER = EventSigner.generate()
LIMIT = 256 * 1024
EXAMPLES = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def reference(value: bytes | None) -> SuspectChange:
    """`parse_event` before the shortcut (the code of the commit before it), its checks kept
    here as they were (`plain`, `small_ints`), with the later fix: a value pydantic's parser
    reads as NaN or an infinity in ``context`` or the snapshot also goes the careful way."""
    if value is not None:
        messages.too_large(value, LIMIT)
    if value is not None and plain(value):
        try:
            event = SuspectChange.model_validate_json(value)
        except ValidationError:
            pass
        else:
            if "schema_" in event.model_fields_set and small_ints(event):
                return messages._names_fit(event, nul_possible=False)
    return messages._names_fit(
        messages._parse(value, CHANGE_SCHEMAS, SuspectChange), nul_possible=True)


def plain(value: bytes) -> bool:
    """No NaN, Infinity or escaped code point in the message (the earlier rule)."""
    return b"NaN" not in value and b"Infinity" not in value and b"\\u" not in value


def small_ints(event: SuspectChange) -> bool:
    """No integer beyond 64 bits, no NaN or infinity (pydantic reads ``1e400`` as one; orjson
    refuses it) and no recipe in ``old_value`` and ``new_value``; no NaN or infinity in
    ``context`` or the snapshot's values (nor in recipes and arrays there)."""
    for v in (event.seq, event.old_value, event.new_value):
        if isinstance(v, dict) or (isinstance(v, float) and not math.isfinite(v)):
            return False
        if isinstance(v, int) and not -(2**63) <= v < 2**64:
            return False
    values = [*event.context.values(), *(event.snapshot.values.values() if event.snapshot
                                         else ())]
    return all(finite(v) for v in values)


def finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(finite(v) for v in value.values())
    if isinstance(value, list):
        return all(finite(v) for v in value)
    return True


def outcome(parse: Any, value: bytes | None) -> tuple[str, Any] | str:
    try:
        event = parse(value)
    except BadMessage as exc:
        return f"refused: {exc}"
    return repr(event), given_fields(event)


def given_fields(model: BaseModel) -> dict[str, Any]:
    """The fields set on the model and on every model inside it."""
    out: dict[str, Any] = {"": sorted(model.model_fields_set)}
    for name in type(model).model_fields:
        inner = getattr(model, name)
        if isinstance(inner, BaseModel):
            out[name] = given_fields(inner)
    return out


# --- what is fed in ------------------------------------------------------------------------

#: Text a valid event may hold: any character but NUL (which the classifier refuses).
chars = st.characters(exclude_characters="\x00")
names = (st.text(chars, min_size=1, max_size=12)
         | st.sampled_from(["x" * 256, "x" * 257, "é" * 256]))
values = (
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats() | st.text(max_size=12)
    | st.dictionaries(st.text(max_size=6), st.floats() | st.integers() | st.text(max_size=4),
                      max_size=3)
)
times = st.datetimes(timezones=st.timezones()) | st.just(WORKDAY)


@st.composite
def valid_events(draw: st.DrawFn) -> SuspectChange:
    overrides: dict[str, Any] = {
        "event_id": draw(names), "site": draw(names), "agent_id": draw(names),
        "seq": draw(st.integers(min_value=0, max_value=2**63 - 1)),
        "controller": {"id": draw(names), "validated": draw(st.booleans())},
        "tag": {"name": draw(names), "unit": draw(st.none() | names),
                "critical_to_quality": draw(st.booleans())},
        "old_value": draw(values), "new_value": draw(values),
        "occurred_at": draw(times), "detected_at": draw(times),
        "actor": draw(st.none() | names),
        "verdict_reason": draw(st.text(chars, max_size=30)),
        "context": draw(st.dictionaries(names, values, max_size=2) | st.just({})),
    }
    if draw(st.booleans()):
        overrides["approval"] = {"id": "CR-1", "valid_from": draw(times),
                                 "valid_until": draw(times), "approved_by": draw(names),
                                 "why_not_matched": draw(st.none() | st.text(chars, max_size=20))}
    if draw(st.booleans()):
        overrides["gap"] = {"start": draw(times), "end": draw(times)}
    if draw(st.booleans()):
        overrides["snapshot"] = {"values": draw(st.dictionaries(names, values, max_size=2)),
                                 "sha256": "ab" * 32}
    return make_event(**overrides)


@st.composite
def event_messages(draw: st.DrawFn) -> bytes:
    """A valid event as an agent publishes it: v2 unsigned, signed or signed in a batch, or
    the same event as v1 (which carries no v2 field)."""
    event = draw(valid_events())
    how = draw(st.sampled_from(["v1", "v2", "signed", "batch"]))
    if how == "v1":
        body = orjson.loads(event.to_json())
        body["schema"] = SCHEMA_V1
        body.pop("snapshot", None)
        return orjson.dumps(body)
    if how == "signed":
        return SIGNER.sign_to_json(event)[1]
    if how == "batch":
        batch = SIGNER.batch_messages([event, make_event(), make_event()])
        return batch[draw(st.integers(min_value=0, max_value=2))]
    return event.to_json()


FIELDS = ["schema", "event_id", "seq", "agent_id", "site", "line", "controller", "tag",
          "old_value", "new_value", "occurred_at", "detected_at", "change_kind", "verdict",
          "verdict_reason", "approval", "context", "actor", "gap", "snapshot", "omitted",
          "signature", "schema_", "unknown"]
#: Values of the wrong type (or the right type, spelled another way).
odd = st.sampled_from([
    None, True, False, 0, 1, -1, 1.0, 2**63, 2**64, 2**70, -(2**63) - 1, 1e300, "", "1", "true",
    "setpoint", "opcua", "unapproved", "otwatch.change/1", "otwatch.change/3", [], [1], {},
    {"id": "x"}, {"$float": "NaN"}, {"$truncated": {"sha256": "00" * 32, "length": 9,
                                                     "head": "x"}},
    "2026-11-23T10:00:00Z", "2026-11-23T10:00:00", "2026-11-23 10:00:00+00:00",
    "2026-11-23T10:00:00.1234567+00:00", "2026-02-30T10:00:00+00:00", "1700000000",
    "2026-11-23T24:00:00+00:00", "2026-11-23T10:00:00+25:00", "2026-11-23", "20261123T100000Z",
    "x" * 300,
])
#: Text spliced into the JSON in place of a value: what no encoder writes.
raw_odd = st.sampled_from([
    "NaN", "-Infinity", "1e400", "-0", "1E2", "0.1e1", "123456789012345678901234567890",
    '"\\u0000"', '"\\ud800"', '"\\u00e9"', '"a\\"b"', "tru", '"\xff"', "{", "[1,]", "00",
])


@st.composite
def broken_messages(draw: st.DrawFn) -> bytes:
    """A valid event message with one thing wrong (or odd but still right)."""
    value = draw(event_messages())
    body: dict[str, Any] = orjson.loads(value)
    field = draw(st.sampled_from(FIELDS))
    how = draw(st.sampled_from(["remove", "replace", "nested", "raw", "cut", "bytes"]))
    if how == "remove":
        body.pop(field, None)
    elif how == "replace":
        body[field] = draw(odd)
    elif how == "nested" and isinstance(body.get(field), dict) and body[field]:
        inner = body[field]
        key = draw(st.sampled_from([*sorted(inner), "extra"]))
        inner[key] = draw(odd)
    elif how == "raw":
        body[field] = "__ODD__"
        text = orjson.dumps(body).decode().replace('"__ODD__"', draw(raw_odd))
        return text.encode("utf-8", "surrogatepass")
    elif how == "cut":
        return value[: draw(st.integers(min_value=0, max_value=len(value)))]
    elif how == "bytes":
        at = draw(st.integers(min_value=0, max_value=len(value)))
        return value[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b" "])) + value[at:]
    try:
        return orjson.dumps(body)
    except TypeError:  # (an integer beyond 64 bits: orjson writes none)
        return json.dumps(body, ensure_ascii=False).encode()


messages_in = (event_messages() | broken_messages() | st.binary(max_size=80)
               | st.sampled_from([None, b"", b"{}", b"[]", b"null",
                                  b'{"schema":"otwatch.change/2"}']))


# --- the tests -----------------------------------------------------------------------------


@EXAMPLES
@given(value=messages_in)
def test_parse_event_decides_as_before(value: bytes | None) -> None:
    assert outcome(lambda v: messages.parse_event(v, max_bytes=LIMIT), value) == outcome(
        reference, value)


@EXAMPLES
@given(value=event_messages() | broken_messages())
def test_an_event_taken_plainly_is_what_pydantic_reads(value: bytes) -> None:
    """Result for result, the common shortcut gives what ``model_validate_json`` gives."""
    try:
        event = messages.parse_event(value, max_bytes=LIMIT)
    except BadMessage:
        return
    if plain(value):
        pydantic = SuspectChange.model_validate_json(value)
        assert repr(event) == repr(pydantic) and event == pydantic
        assert given_fields(event) == given_fields(pydantic)


@EXAMPLES
@given(value=event_messages())
def test_every_valid_event_is_taken(value: bytes) -> None:
    """A valid event (names within the limits) is never refused, signed or not."""
    body = orjson.loads(value)
    names = [body["event_id"], body["site"], body["agent_id"], body["controller"]["id"],
             body["tag"]["name"], body["tag"].get("unit") or "", body.get("actor") or "",
             *body.get("context", {}), *(body.get("approval") or {}).values()]
    if max(len(name) for name in names if isinstance(name, str)) > messages.MAX_NAME_CHARS:
        return  # (refused, as it should be: `test_parse_event_decides_as_before` says how)
    event = messages.parse_event(value, max_bytes=LIMIT)
    assert event.schema_ in (SCHEMA, SCHEMA_V1)


@pytest.mark.parametrize("require_signed", [False, True])
def test_judge_event_takes_an_unsigned_event_only_when_signatures_are_not_required(
    require_signed: bool,
) -> None:
    """`judge_event` takes an unsigned event only while signatures are not required, and a
    signed one by a trusted key always."""
    value = make_event().to_json()
    trusted = TrustedAgents({SIGNER.key_id: SIGNER.public_key_b64},
                            require_signed=require_signed)
    judged = judge_event(value, max_bytes=LIMIT, trusted=trusted, now=WORKDAY)
    assert isinstance(judged, SuspectChange) is (not require_signed)
    signed = SIGNER.sign_to_json(make_event())[1]
    assert isinstance(judge_event(signed, max_bytes=LIMIT, trusted=trusted, now=WORKDAY),
                      SuspectChange)
