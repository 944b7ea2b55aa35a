"""The classifier's fast paths decide exactly what the plain ones did.

`classify` runs compiled rules (closures per condition, rules pre-selected by verdict, decisions
cached per set of fired rules); `parse_event` lets ``model_validate_json`` decide plain
messages. Each is compared here with a plain reference over many inputs. Pure: no broker.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from agent.contract import CHANGE_SCHEMAS, SuspectChange
from detectors import messages
from detectors.classification import SEVERITY_ORDER, ClassKind, Severity
from detectors.correlate import NO_CONTEXT, EventContext, IntegrityKind
from detectors.criteria import Conditions, Criteria, classify, load_criteria
from detectors.errors import BadMessage
from tests.support.events import make_event

SHIPPED = load_criteria(Path(__file__).parents[2] / "config" / "criteria.yaml")
#: Every condition the criteria language has, so each compiled check is exercised.
EVERY_CONDITION = Criteria.model_validate({
    "version": "test-1",
    "calendar": {"timezone": "Europe/Berlin"},
    "known_actors": ["j.doe"],
    "rules": [
        {"id": "OFF", "description": "off hours", "when": {"off_hours": True},
         "contributes": ["security"], "severity": "high", "security_impact": "night"},
        {"id": "ON", "description": "working hours", "when": {"off_hours": False},
         "contributes": ["quality"], "quality_impact": "day"},
        {"id": "BURST", "description": "burst", "when": {"burst": True},
         "contributes": ["security"], "severity": "critical", "attack_technique": "T0855"},
        {"id": "LONE", "description": "no burst", "when": {"burst": False, "tag_kind": ["mode"]},
         "contributes": ["quality"]},
        {"id": "GAP", "description": "seq gap", "when": {"integrity": ["seq_gap"]},
         "contributes": ["quality", "security"], "severity": "low"},
        {"id": "ACTOR", "description": "unknown actor",
         "when": {"unknown_actor": True, "controller_validated": False},
         "contributes": ["security"], "attack_technique": "T0836"},
        {"id": "KNOWN", "description": "known actor", "when": {"unknown_actor": False},
         "contributes": ["quality"]},
    ],
})

EVENTS = [
    make_event(
        verdict=verdict, change_kind=change_kind, actor=actor, occurred_at=at,
        tag={"critical_to_quality": ctq, "kind": kind},
        controller={"validated": validated},
    )
    for verdict, change_kind, ctq, kind, validated, actor, at in itertools.product(
        ["authorized", "unapproved", "outside_window", "value_mismatch", "approval_invalid"],
        ["setpoint_change", "recipe_edit", "program_change", "mode_change", "monitoring_gap"],
        [True, False],
        ["setpoint", "mode"],
        [True, False],
        [None, "j.doe", "m.keller", "intruder"],
        [datetime(2026, 11, 23, 10, 0, tzinfo=UTC), datetime(2026, 11, 22, 23, 30, tzinfo=UTC)],
    )
]
CONTEXTS = [
    NO_CONTEXT,
    EventContext(burst_controllers=3, correlation_key="plant-1/plc-1"),
    EventContext(correlation_key="integrity:edge-01", integrity=IntegrityKind.SEQ_GAP),
]


def _holds(cond: Conditions, ev: SuspectChange, criteria: Criteria, ctx: EventContext) -> bool:
    """The rule check as it was written before compiling (the reference)."""
    checks = [
        cond.burst is None or ctx.in_burst is cond.burst,
        cond.integrity is None or ctx.integrity in cond.integrity,
        cond.verdict is None or ev.verdict in cond.verdict,
        cond.change_kind is None or ev.change_kind in cond.change_kind,
        cond.tag_kind is None or ev.tag.kind in cond.tag_kind,
        cond.critical_to_quality is None
        or ev.tag.critical_to_quality is cond.critical_to_quality,
        cond.controller_validated is None
        or ev.controller.validated is cond.controller_validated,
        cond.off_hours is None
        or criteria.calendar.is_off_hours(ev.occurred_at) is cond.off_hours,
        cond.unknown_actor is None
        or (ev.actor is None or ev.actor not in criteria.known_actors) is cond.unknown_actor,
    ]
    return all(checks)


def _reference(ev: SuspectChange, criteria: Criteria, ctx: EventContext) -> dict[str, Any]:
    fired = [r for r in criteria.rules if _holds(r.when, ev, criteria, ctx)]
    domains = {d for r in fired for d in r.contributes}
    kind = (
        ClassKind.JOINT if {"quality", "security"} <= domains
        else ClassKind.QUALITY_ONLY if domains == {"quality"}
        else ClassKind.SECURITY_ONLY if domains == {"security"}
        else ClassKind.NONE
    )
    return {
        "kind": kind,
        "severity": max((r.severity for r in fired), key=SEVERITY_ORDER.__getitem__,
                        default=Severity.LOW),
        "rules_fired": tuple(r.id for r in fired),
        "quality_impact": "; ".join(r.quality_impact for r in fired if r.quality_impact),
        "security_impact": "; ".join(r.security_impact for r in fired if r.security_impact),
        "attack_techniques": tuple(sorted({r.attack_technique for r in fired
                                           if r.attack_technique})),
        "correlation_key": ctx.correlation_key or f"{ev.site}/{ev.controller.id}",
        "criteria_version": criteria.version,
    }


@pytest.mark.parametrize("criteria", [SHIPPED, EVERY_CONDITION], ids=["shipped", "every"])
def test_compiled_rules_decide_as_the_plain_rule_walk(criteria: Criteria) -> None:
    for ev, ctx in itertools.product(EVENTS, CONTEXTS):
        got = classify(ev, criteria, ctx)
        want = _reference(ev, criteria, ctx)
        assert got.model_dump(include=set(want)) == want, (ev, ctx)
        # built without validation: it must still be a valid Classification
        assert type(got).model_validate(got.model_dump()) == got


def test_every_rule_of_the_test_criteria_fires_somewhere() -> None:
    fired = {r for ev, ctx in itertools.product(EVENTS, CONTEXTS)
             for r in classify(ev, EVERY_CONDITION, ctx).rules_fired}
    assert fired == {r.id for r in EVERY_CONDITION.rules}


def _careful(value: bytes | None) -> SuspectChange:
    return messages._parse(value, CHANGE_SCHEMAS, SuspectChange)


def _decided(parse: Callable[[], SuspectChange]) -> SuspectChange | str:
    """The event ``parse`` gives, or ``bad: <reason>``."""
    try:
        return parse()
    except BadMessage as exc:
        return f"bad: {exc}"


PLAIN = make_event(actor="j.doe").to_json()


@pytest.mark.parametrize(
    "value",
    [
        PLAIN,
        b" " + PLAIN + b"\n",
        PLAIN.replace(b'"schema":"otwatch.change/1",', b""),
        PLAIN.replace(b'"otwatch.change/1"', b'"otwatch.change/2"'),
        PLAIN.replace(b'"old_value":200.0', b'"old_value":NaN'),
        PLAIN.replace(b'"old_value":200.0', b'"old_value":Infinity'),
        PLAIN.replace(b'"old_value":200.0', b'"old_value":123456789012345678901234567'),
        PLAIN.replace(b'"old_value":200.0', b'"old_value":{"id":"r1","version":2}'),
        PLAIN.replace(b"oven-01", b"oven-\\u00e9"),
        PLAIN.replace(b"oven-01", b"oven-\\ud800"),
        PLAIN.replace(b'"seq":1', b'"seq":-1'),
        PLAIN.replace(b'"verdict":"unapproved"', b'"verdict":"maybe"'),
        PLAIN[:-1],
        b"[1, 2]",
        b"\xef\xbb\xbf" + PLAIN,
        b"",
        None,
    ],
)
def test_parse_event_decides_as_the_careful_path(value: bytes | None) -> None:
    want = _decided(lambda: _careful(value))
    got = _decided(lambda: messages.parse_event(value))
    assert got == want
    if isinstance(got, SuspectChange) and value is not None:
        orjson.loads(value)  # what the store keeps as evidence loads again


def _with(path: str, text: str) -> bytes:
    body = orjson.loads(PLAIN)
    *parents, leaf = path.split(".")
    node = body
    for name in parents:
        node = node[name]
    node[leaf] = text
    return orjson.dumps(body)


_NAMES = ["event_id", "agent_id", "site", "line", "controller.id", "controller.endpoint",
          "tag.name", "tag.address", "tag.unit", "actor"]


@pytest.mark.parametrize(
    ("path", "length"),
    [(p, n) for p in _NAMES for n in (messages.MAX_NAME_CHARS, messages.MAX_NAME_CHARS + 1)]
    + [("verdict_reason", n) for n in (messages.MAX_TEXT_CHARS, messages.MAX_TEXT_CHARS + 1)],
)
def test_name_and_text_limits_hold_on_the_plain_path(path: str, length: int) -> None:
    """The plain path checks every name's length at a glance: a name at the limit passes, one
    over it is refused with the reason the careful check gives (naming the field)."""
    value = _with(path, "x" * length)
    want = _decided(lambda: messages._names_fit(_careful(value), nul_possible=True))
    got = _decided(lambda: messages.parse_event(value))
    assert got == want
    over = length > (messages.MAX_TEXT_CHARS if path == "verdict_reason"
                     else messages.MAX_NAME_CHARS)
    assert isinstance(got, str) == over
    if over:
        assert f": {path}: {length} characters, over" in got


#: Pieces whose every combination tests `messages._unescaped` against the ``\\u`` search.
_PIECES = [b"", b"a", b"N", b"NaN", b"\\", b"\\u", b"u", b"\\\\", b"\"n\"",
           b"{\"$float\":\"nan\"}"]


def test_unescaped_decides_as_the_escape_search() -> None:
    """The one-byte search only skips the ``\\u`` search where it cannot find it."""
    for parts in itertools.product(_PIECES, repeat=3):
        value = b"".join(parts)
        assert messages._unescaped(value) is (b"\\u" not in value), value
