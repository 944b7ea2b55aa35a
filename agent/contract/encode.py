"""An event's canonical JSON without pydantic's serializer: the same bytes, less CPU.

`SuspectChange.to_json` is what the agent signs and publishes, once per event (every OPC UA
notification that is a change). ``model_dump(mode="json", by_alias=True)`` walks the model's
schema in pydantic's serializer; the event's shape is fixed (`agent.contract.events`), so
`event_body` lists its fields and orjson writes them (`event_json`): datetimes in UTC and
enums as orjson writes them natively, which is how pydantic writes them (``Z`` for UTC, six
digits of microseconds when there are any). A datetime with another offset is written as
pydantic writes it (`datetime_text`). The pydantic model stays the contract:
tests/agent/contract/test_encode.py holds ``event_json(event_body(e))`` equal, byte for byte,
to the canonical JSON of ``model_dump`` for generated events of every shape.

Parts already written are not written again: a controller's reference (one object per
controller, in every event of it) and a whole snapshot's values, whose JSON the agent has from
the snapshot's digest (`known_json`; tests/agent/test_snapshot_encoded.py holds the bytes equal
with and without it). Both go in as `orjson.Fragment`.

Example::

    >>> event_json(event_body(event)) == canonical_json(event.json_object())
    True
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import TypeAdapter

from agent.contract.values import encode_value, scrub

if TYPE_CHECKING:
    from agent.contract.events import (
        ApprovalConsidered,
        ControllerRef,
        EventSignature,
        MonitoringGap,
        Snapshot,
        SuspectChange,
    )

_ZERO = timedelta(0)
_DATETIME = TypeAdapter(datetime)
#: Canonical JSON (`agent.contract.values.canonical_json`), UTC datetimes written with ``Z``.
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z


def event_json(body: dict[str, Any]) -> bytes:
    """`event_body` (or a part of it) as canonical JSON: what is signed and published."""
    try:
        return orjson.dumps(body, option=_OPTIONS)
    except orjson.JSONEncodeError:  # a lone surrogate: as `canonical_json` writes it
        return orjson.dumps(scrub(body), option=_OPTIONS)


def datetime_text(at: datetime) -> str:
    """``at`` as pydantic's JSON mode writes it."""
    offset = at.utcoffset()
    if offset is None:
        return at.isoformat()
    if offset == _ZERO:
        return at.replace(tzinfo=None).isoformat() + "Z"
    if offset.microseconds or offset.seconds % 60:
        return str(_DATETIME.dump_python(at, mode="json"))
    return at.isoformat()


def _at(at: datetime) -> datetime | str:
    """A datetime orjson writes as pydantic does (UTC, the agent's own), else its text."""
    return at if at.tzinfo is UTC else datetime_text(at)


def event_body(ev: SuspectChange) -> dict[str, Any]:
    """The event's members for `event_json` (every field, None too): ``model_dump(mode="json",
    by_alias=True)`` but for UTC datetimes and enums, left for orjson to write."""
    body = event_members(ev)
    body["signature"] = None if ev.signature is None else _signature(ev.signature)
    return body


def event_members(ev: SuspectChange) -> dict[str, Any]:
    """`event_body` but ``signature`` (the signer writes its own). The model's fields are
    copied at once (its ``__dict__``, in C); only the members orjson cannot write as they are
    (nested models, a value that is not a finite float, a datetime not in UTC) are replaced,
    so the common event costs one copy and a few lookups (this runs once per event)."""
    fields = ev.__dict__
    members = fields.copy()
    del members["signature"]
    members["schema"] = members.pop("schema_")
    members["controller"] = _ref_json(fields["controller"])
    # A tag reference's fields are its members, as they are (read, never changed, here).
    members["tag"] = fields["tag"].__dict__
    old, new = fields["old_value"], fields["new_value"]
    if type(old) is not float or old - old:  # a finite float is written as it is (x - x: 0.0)
        members["old_value"] = encode_value(old)
    if type(new) is not float or new - new:
        members["new_value"] = encode_value(new)
    if fields["occurred_at"].tzinfo is not UTC:
        members["occurred_at"] = datetime_text(fields["occurred_at"])
    if fields["detected_at"].tzinfo is not UTC:
        members["detected_at"] = datetime_text(fields["detected_at"])
    if fields["context"]:
        members["context"] = encode_value(fields["context"])
    if fields["approval"] is not None:
        members["approval"] = _approval(fields["approval"])
    if fields["gap"] is not None:
        members["gap"] = _gap(fields["gap"])
    if fields["snapshot"] is not None:
        members["snapshot"] = _snapshot(fields["snapshot"])
    return members


def _ref_json(ref: ControllerRef) -> orjson.Fragment:
    """The canonical JSON of a controller's reference, written once per reference object (the
    agent builds one per controller, immutable, and every event of the controller carries it).
    Not so for tags: a controller of 10,000 tags changes a few of them at a time, so a cache
    of their references would mostly miss (and hold memory per tag)."""
    known = _REFS.get(id(ref))
    if known is not None and known[0] is ref:
        return known[1]
    if len(_REFS) >= _REFS_MAX:
        _REFS.clear()
    fragment = orjson.Fragment(event_json(controller_object(ref)))
    _REFS[id(ref)] = (ref, fragment)
    return fragment


#: The controller references written so far, by identity (each entry holds its object, so
#: no other takes its id while it is here); cleared when full.
_REFS: dict[int, tuple[ControllerRef, orjson.Fragment]] = {}
_REFS_MAX = 1024


def controller_object(ref: ControllerRef) -> dict[str, Any]:
    return {"id": ref.id, "protocol": ref.protocol, "endpoint": ref.endpoint,
            "validated": ref.validated}


def _approval(ap: ApprovalConsidered) -> dict[str, Any]:
    return {
        "id": ap.id, "valid_from": _at(ap.valid_from),
        "valid_until": _at(ap.valid_until), "approved_by": ap.approved_by,
        "change_control_ref": ap.change_control_ref, "why_not_matched": ap.why_not_matched,
    }


def _gap(gap: MonitoringGap) -> dict[str, Any]:
    return {"start": _at(gap.start), "end": _at(gap.end)}


def known_json(values: dict[str, Any], encoded: bytes) -> None:
    """Note that ``encoded`` is ``canonical_json(encode_value(values))`` (``values``: a
    snapshot's map, never changed after): the event's encoding writes those bytes as they are.
    """
    if len(_KNOWN) >= _KNOWN_MAX:
        _KNOWN.clear()  # their events were signed long ago (a miss only costs an encoding)
    _KNOWN[id(values)] = (values, orjson.Fragment(encoded))


#: Snapshot value maps whose canonical JSON is known (`known_json`), by identity, the newest
#: few. A whole snapshot's JSON is its digest's members joined
#: (`agent.snapshot_digest.SnapshotDigest.encoded`), and its event is encoded twice between
#: being built and signed (`agent.contract.limits.fit_event` measures it, the signer writes
#: it): ~2 ms each for 10,000 values, where the bytes were at hand. Each entry holds its map,
#: so no other map can take its id; the notes are only ever cleared (never changed one by
#: one), so a signer in another thread would at worst miss one.
_KNOWN: dict[int, tuple[dict[str, Any], orjson.Fragment]] = {}
_KNOWN_MAX = 8


def _snapshot(snapshot: Snapshot) -> dict[str, Any]:
    values = snapshot.values
    if not values:  # by reference: the hash alone
        return {"values": {}, "sha256": snapshot.sha256}
    known = _KNOWN.get(id(values))
    encoded = known[1] if known is not None and known[0] is values else encode_value(values)
    return {"values": encoded, "sha256": snapshot.sha256}


def _signature(sig: EventSignature) -> dict[str, Any]:
    out: dict[str, Any] = {"key_id": sig.key_id, "alg": sig.alg, "value": sig.value}
    if sig.proof is not None:
        out["proof"] = {"leaf_index": sig.proof.leaf_index, "tree_size": sig.proof.tree_size,
                        "path": list(sig.proof.path)}
    return out
