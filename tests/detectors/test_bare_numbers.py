"""A bare ``NaN``, ``Infinity``, ``-Infinity`` or a number beyond a float's range is refused
wherever an event carries a value: ``old_value``, ``new_value``, each ``context`` value, each
snapshot value, and inside recipes and arrays there.

pydantic's own JSON parser reads such a number (as NaN or an infinity); orjson refuses it, and
the records store keeps the message as evidence that must load with orjson again. The agent
writes a NaN or an infinity as ``{"$float": "NaN"}`` (`agent.contract.values`): that spelling
is taken everywhere. A refused message is a `BadMessage` naming the member and the fix, and it
goes to the dead-letter topic like any other (`judge_event` raises, nothing is recorded).
Pure: no broker.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.contract import CHANGE_SCHEMAS, EventSigner, SuspectChange
from detectors import messages
from detectors.errors import BadMessage
from detectors.messages import parse_event
from detectors.signatures import TrustedAgents, judge_event
from tests.detectors.test_parse_equivalence import event_messages
from tests.support.events import WORKDAY, make_event

SIGNER = EventSigner.generate()
LIMIT = 256 * 1024
BARE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1.5E309", "1" + "0" * 400]
#: Where a value sits in the event's JSON, and the member the refusal names.
PLACES = [
    (("new_value",), "new_value"),
    (("old_value",), "old_value"),
    (("new_value", "speed"), "new_value.speed"),
    (("context", "lot"), "context.lot"),
    (("context", "recipe", "steps", 1), "context.recipe.steps[1]"),
    (("snapshot", "values", "oven-01.temperature"), "snapshot.values.oven-01.temperature"),
    (("snapshot", "values", "press"), "snapshot.values.press"),
]


def _event(path: tuple[str | int, ...]) -> SuspectChange:
    """An event with a place for ``path`` and every other value plain (a recipe elsewhere
    would send the whole message the careful way, hiding what the plain way does)."""
    if path[0] == "context":
        return make_event(context={"lot": 3.5, "recipe": {"steps": [1.0, 2.0]}})
    if path[0] == "snapshot":
        return make_event(snapshot={"values": {"oven-01.temperature": 230.0, "press": 1},
                                    "sha256": "ab" * 32})
    if len(path) > 1:
        return make_event(new_value={"id": "R7", "speed": 1.5})
    return make_event()


def _with(raw: bytes, path: tuple[str | int, ...], text: str) -> bytes:
    """``raw`` with the value at ``path`` written as ``text``, as no JSON encoder writes it."""
    body: Any = orjson.loads(raw)
    node = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = "__BARE__"
    return orjson.dumps(body).replace(b'"__BARE__"', text.encode())


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
@pytest.mark.parametrize(("path", "member"), PLACES, ids=[m for _, m in PLACES])
@pytest.mark.parametrize("text", BARE)
def test_a_bare_non_finite_number_is_refused_naming_the_member_and_the_fix(
    text: str, path: tuple[str | int, ...], member: str, signed: bool
) -> None:
    event = _event(path)
    raw = SIGNER.sign_to_json(event)[1] if signed else event.to_json()
    value = _with(raw, path, text)
    with pytest.raises(BadMessage) as refused:
        parse_event(value, max_bytes=LIMIT)
    reason = str(refused.value)
    assert reason.startswith("not JSON: ")
    assert f"; {member}: " in reason
    assert '{"$float": "NaN"}' in reason  # the fix
    trusted = TrustedAgents({SIGNER.key_id: SIGNER.public_key_b64}, require_signed=signed)
    with pytest.raises(BadMessage):  # to the dead-letter topic: not an event, not a finding
        judge_event(value, max_bytes=LIMIT, trusted=trusted, now=WORKDAY)


@pytest.mark.parametrize(("path", "member"), PLACES, ids=[m for _, m in PLACES])
@pytest.mark.parametrize("name", ["NaN", "Infinity", "-Infinity"])
def test_the_agents_spelling_is_taken_everywhere(
    name: str, path: tuple[str | int, ...], member: str
) -> None:
    """``{"$float": ...}`` is a NaN or an infinity the evidence keeps: taken, whatever the
    member, and read back as the float."""
    value = _with(_event(path).to_json(), path, f'{{"$float": "{name}"}}')
    event = parse_event(value, max_bytes=LIMIT)
    orjson.loads(value)  # the evidence loads again
    got: Any = event.model_dump()
    for step in path:
        got = got[step]
    want = float(name.lower().replace("infinity", "inf"))
    assert math.isnan(got) if math.isnan(want) else got == want


def test_a_finite_number_written_oddly_is_still_taken() -> None:
    """Only numbers beyond a float's range are refused: large, tiny and exponent forms of
    finite numbers stay events."""
    for text in ["1e308", "-1.7976931348623157e308", "1e-400", "2.5E+3", "0"]:
        value = _with(_event(("context",)).to_json(), ("context", "lot"), text)
        assert parse_event(value, max_bytes=LIMIT).context["lot"] == float(text)


def test_a_heartbeat_with_a_bare_nan_names_the_member_too() -> None:
    from detectors.messages import parse_heartbeat

    raw = (b'{"schema": "otwatch.heartbeat/1", "agent_id": "a", "version": "1", '
           b'"sent_at": "2026-11-23T10:00:00Z", "controllers_up": NaN, '
           b'"controllers_total": 1, "spool_depth": 0, "last_seq": 0}')
    with pytest.raises(BadMessage, match=r"^not JSON: .*; controllers_up: "):
        parse_heartbeat(raw)


def test_a_member_named_with_a_control_character_is_named_escaped() -> None:
    """A dead letter's reason is one printable line, whatever the message's names (the
    fuzz test found a form feed in the refusal)."""
    with pytest.raises(BadMessage) as refused:
        parse_event(b'{"\\f\\n": Infinity}', max_bytes=LIMIT)
    reason = str(refused.value)
    assert reason.isprintable(), reason
    assert "; \\x0c\\n: a bare NaN" in reason


# --- any place, any spelling: the plain way decides as the careful way -----------------------

#: Text spliced in place of a value anywhere in an event: numbers JSON has not, numbers
#: spelled oddly, the agent's markers, long names, and values of the wrong type.
SPLICED = st.sampled_from([
    *BARE, "-0", "1E2", "0.1e1", "123456789012345678901234567", "1e308", "1e-400",
    '{"$float": "NaN"}', '{"$float": "-Infinity"}', '{"$float": "nan"}', "[1, NaN]",
    '{"a": [1e400]}', '{"a": {"b": 2}}', '"x"', '"' + "x" * 257 + '"', '"' + "x" * 16385 + '"',
    "null", "true", "[]", "{}",
])


def _places(node: Any, where: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every member and item of a JSON value, by its path."""
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return []
    return [p for key, item in items for p in [(*where, key), *_places(item, (*where, key))]]


def _careful(value: bytes) -> str:
    """What the careful way (orjson, then the model, then every name) decides."""
    try:
        return repr(messages._names_fit(messages._parse(value, CHANGE_SCHEMAS, SuspectChange),
                                        nul_possible=True))
    except BadMessage as exc:
        return f"refused: {exc}"


@settings(max_examples=600, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), value=event_messages())
def test_the_plain_way_decides_as_the_careful_way_wherever_a_value_is_odd(
    data: st.DataObject, value: bytes
) -> None:
    """One member anywhere (inside context, snapshot, recipes, the approval, the signature)
    written as one of `SPLICED`: `parse_event` gives the event or the refusal the careful way
    gives, and an event it takes loads with orjson again (the evidence)."""
    places = _places(orjson.loads(value))
    in_values = [p for p in places if p[0] in ("old_value", "new_value", "context", "snapshot")]
    path = data.draw(st.sampled_from(in_values or places) | st.sampled_from(places))
    value = _with(value, path, data.draw(SPLICED))
    try:
        got = repr(parse_event(value, max_bytes=LIMIT))
    except BadMessage as exc:
        got = f"refused: {exc}"
    assert got == _careful(value)
    if not got.startswith("refused"):
        orjson.loads(value)
