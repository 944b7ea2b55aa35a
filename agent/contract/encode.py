"""An event's JSON object without pydantic's serializer: the same object, a fraction of the CPU.

`SuspectChange.to_json` is what the agent signs and publishes, once per event (every OPC UA
notification that is a change). ``model_dump(mode="json", by_alias=True)`` walks the model's
schema in pydantic's serializer and cost as much as building the event; the event's shape is
fixed (`agent.contract.events`), so `event_object` writes it field by field. The pydantic model
stays the contract: tests/agent/contract/test_encode.py holds `event_object` equal to
``model_dump`` for generated events of every shape, and the bytes to what validates.

Datetimes are written as pydantic writes them (``Z`` for UTC, ``+hh:mm`` otherwise, six
digits of microseconds when there are any); an offset that is not whole minutes (none in
practice) is left to pydantic.

Example::

    >>> event_object(event) == event.model_dump(mode="json", by_alias=True)
    True
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from agent.contract.values import encode_value

if TYPE_CHECKING:
    from agent.contract.events import (
        ApprovalConsidered,
        ControllerRef,
        EventSignature,
        MonitoringGap,
        Snapshot,
        SuspectChange,
        TagRef,
    )

_ZERO = timedelta(0)
_DATETIME = TypeAdapter(datetime)


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


def event_object(ev: SuspectChange) -> dict[str, Any]:
    """The event as ``model_dump(mode="json", by_alias=True)`` gives it (every field, None too)."""
    return {
        "schema": ev.schema_,
        "event_id": ev.event_id,
        "seq": ev.seq,
        "agent_id": ev.agent_id,
        "site": ev.site,
        "line": ev.line,
        "controller": controller_object(ev.controller),
        "tag": tag_object(ev.tag),
        "old_value": encode_value(ev.old_value),
        "new_value": encode_value(ev.new_value),
        "occurred_at": datetime_text(ev.occurred_at),
        "detected_at": datetime_text(ev.detected_at),
        "change_kind": ev.change_kind.value,
        "verdict": ev.verdict.value,
        "verdict_reason": ev.verdict_reason,
        "approval": None if ev.approval is None else _approval(ev.approval),
        "context": encode_value(ev.context),
        "actor": ev.actor,
        "gap": None if ev.gap is None else _gap(ev.gap),
        "snapshot": None if ev.snapshot is None else _snapshot(ev.snapshot),
        "omitted": None if ev.omitted is None else list(ev.omitted),
        "signature": None if ev.signature is None else _signature(ev.signature),
    }


def controller_object(ref: ControllerRef) -> dict[str, Any]:
    return {"id": ref.id, "protocol": ref.protocol.value, "endpoint": ref.endpoint,
            "validated": ref.validated}


def tag_object(ref: TagRef) -> dict[str, Any]:
    return {"name": ref.name, "address": ref.address, "kind": ref.kind.value,
            "critical_to_quality": ref.critical_to_quality, "unit": ref.unit}


def _approval(ap: ApprovalConsidered) -> dict[str, Any]:
    return {
        "id": ap.id, "valid_from": datetime_text(ap.valid_from),
        "valid_until": datetime_text(ap.valid_until), "approved_by": ap.approved_by,
        "change_control_ref": ap.change_control_ref, "why_not_matched": ap.why_not_matched,
    }


def _gap(gap: MonitoringGap) -> dict[str, Any]:
    return {"start": datetime_text(gap.start), "end": datetime_text(gap.end)}


def _snapshot(snapshot: Snapshot) -> dict[str, Any]:
    return {"values": encode_value(snapshot.values), "sha256": snapshot.sha256}


def _signature(sig: EventSignature) -> dict[str, Any]:
    out: dict[str, Any] = {"key_id": sig.key_id, "alg": sig.alg, "value": sig.value}
    if sig.proof is not None:
        out["proof"] = {"leaf_index": sig.proof.leaf_index, "tree_size": sig.proof.tree_size,
                        "path": list(sig.proof.path)}
    return out
