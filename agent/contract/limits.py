"""Size limits on an event: no value and no event can be too large to publish.

A Kafka broker refuses a message over its size limit (1 MB by default), and a refused message
at the head of an agent's spool would hold back every event behind it. So the agent builds
every event within two limits (`EventLimits`, settings ``events.max_value_bytes`` and
``events.max_event_bytes`` of the agent config):

- a value (``old_value``, ``new_value``, each ``context`` value, each snapshot value) whose
  canonical JSON is over ``max_value_bytes`` is replaced by ``{"$truncated": {"sha256",
  "length", "head"}}`` (`limit_value`; the format is `agent.contract.values`), and a text
  that quotes a value (``verdict_reason``, ``actor``, the approval's ``why_not_matched``) is
  cut to `MAX_TEXT_CHARS` (`limit_values`);
- an event whose JSON is still over ``max_event_bytes`` (room kept for ``seq`` and the
  signature) loses, in this order and only as far as needed, the snapshot's values (its hash
  stays), ``context``, then the heads of truncated values and the long texts; each part left
  out is named in ``omitted`` (`fit_event`).

Example::

    >>> limits = EventLimits(max_value_bytes=1024)
    >>> limit_value("x" * 5000, limits)["$truncated"]["length"]
    5002
    >>> event = fit_event(event, limits)             # under both limits, room left to sign
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.contract.events import Snapshot, SuspectChange
from agent.contract.values import TRUNCATED_KEY, TagValue, canonical_json, encode_value

#: Defaults: a value up to 64 KiB, an event up to 512 KiB (Kafka's default limit is 1 MB).
DEFAULT_MAX_VALUE_BYTES = 64 * 1024
DEFAULT_MAX_EVENT_BYTES = 512 * 1024
DEFAULT_HEAD_CHARS = 256
#: Room an event keeps for what is set after it is built: its seq and its signature (with a
#: batch's Merkle proof: about 600 bytes for a tree of
#: `agent.contract.merkle.MAX_TREE_SIZE` events; a test holds it).
RESERVED_BYTES = 1024
#: How long a text of the event may be (a reason quotes the values it is about).
MAX_TEXT_CHARS = 4096
#: How long a text field may stay when an event must shrink to fit.
_SHORT_TEXT = 1000
#: A string this short cannot make an event large.
_SMALL_STRING = 1024


@dataclass(frozen=True, slots=True)
class EventLimits:
    """How large a value and an event may be; the agent config's ``events`` section."""

    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    head_chars: int = DEFAULT_HEAD_CHARS


def value_json(value: Any) -> bytes:
    """A value's canonical JSON: what its hash and length in a truncation are computed over."""
    return canonical_json(encode_value(value))


def limit_value(value: TagValue, limits: EventLimits) -> TagValue:
    """The value itself when its JSON fits ``max_value_bytes``, else its truncation."""
    if value is None or isinstance(value, bool | int | float):
        return value
    # JSON escapes a character to at most 6 bytes: a short string needs no encoding to know.
    if isinstance(value, str) and 6 * len(value) + 2 <= limits.max_value_bytes:
        return value
    if _is_truncation(value):
        return value
    encoded = value_json(value)
    if len(encoded) <= limits.max_value_bytes:
        return value
    return truncation(value, encoded, limits.head_chars)


def truncation(value: TagValue, encoded: bytes, head_chars: int) -> dict[str, Any]:
    """``{"$truncated": ...}`` for ``value`` whose canonical JSON is ``encoded``."""
    text = value if isinstance(value, str) else encoded.decode("utf-8", "replace")
    return {
        TRUNCATED_KEY: {
            "sha256": hashlib.sha256(encoded).hexdigest(),
            "length": len(encoded),
            "head": text[:head_chars],
        }
    }


def _is_truncation(value: TagValue) -> bool:
    return isinstance(value, dict) and len(value) == 1 and TRUNCATED_KEY in value


def limit_mapping(values: Mapping[str, TagValue], limits: EventLimits) -> dict[str, TagValue]:
    # A number stands as it is (`limit_value`'s first test), checked inline: a snapshot of
    # 10,000 values is limited once a second per controller. Numbers only (most snapshots):
    # the types are looked at in C, and the copy made there.
    if NUMBER_TYPES.issuperset(map(type, values.values())):
        return dict(values)
    return {
        name: value if type(value) in _NUMBERS else limit_value(value, limits)
        for name, value in values.items()
    }


_NUMBERS = (float, int, bool, type(None))
#: The types of value no limit ever changes (`limit_value` returns them as they are).
NUMBER_TYPES = frozenset(_NUMBERS)


def take_snapshot(values: Mapping[str, TagValue], limits: EventLimits) -> Snapshot:
    """The snapshot of a controller's watched values: hash over all of them, values limited."""
    digest = hashlib.sha256(value_json(dict(values))).hexdigest()
    return Snapshot(values=limit_mapping(values, limits), sha256=digest)


def limit_values(
    event: SuspectChange, limits: EventLimits, *, snapshot_limited: bool = False
) -> SuspectChange:
    """The event with every value within ``max_value_bytes`` and every text within
    `MAX_TEXT_CHARS` (the same object when all were). ``snapshot_limited``: the snapshot's
    values were built within ``limits`` (`take_snapshot`, `limit_mapping`): not walked again."""
    update: dict[str, Any] = {}
    for name in ("old_value", "new_value"):
        value = getattr(event, name)
        limited = limit_value(value, limits)
        if limited is not value:
            update[name] = limited
    if event.context:
        context = limit_mapping(event.context, limits)
        if any(context[k] is not v for k, v in event.context.items()):
            update["context"] = context
    snapshot = event.snapshot
    if snapshot is not None and snapshot.values and not snapshot_limited:
        values = limit_mapping(snapshot.values, limits)
        if any(values[k] is not v for k, v in snapshot.values.items()):
            update["snapshot"] = snapshot.model_copy(update={"values": values})
    update.update(_cut_texts(event, MAX_TEXT_CHARS))
    return event.model_copy(update=update) if update else event


def _cut_texts(event: SuspectChange, chars: int) -> dict[str, Any]:
    update: dict[str, Any] = {}
    for name in ("verdict_reason", "actor"):
        text = getattr(event, name)
        if text is not None and len(text) > chars:
            update[name] = text[:chars] + "..."
    why = event.approval.why_not_matched if event.approval is not None else None
    if event.approval is not None and why is not None and len(why) > chars:
        update["approval"] = event.approval.model_copy(
            update={"why_not_matched": why[:chars] + "..."}
        )
    return update


def fit_event(
    event: SuspectChange, limits: EventLimits, *, snapshot_limited: bool = False
) -> SuspectChange:
    """The event within both limits, `RESERVED_BYTES` of ``max_event_bytes`` left for a
    ``seq`` and a signature. ``snapshot_limited``: its snapshot's values are within ``limits``
    already (a 10,000-tag snapshot is not walked a second time).

    An event of scalars and short strings with no snapshot values fits as it is (no serialisation:
    this is every event's path). An event of huge names (controller, tag, approval) that no
    step can shrink is returned as small as it gets; the spool's quarantine is the last line
    for such a one.
    """
    if _untouched(event, limits):  # nothing to limit, nothing to measure: most events
        return event
    event = limit_values(event, limits, snapshot_limited=snapshot_limited)
    if _surely_small(event):
        return event
    budget = limits.max_event_bytes - RESERVED_BYTES
    for shrink in (_without_snapshot_values, _without_context, _with_short_texts):
        if len(event.to_json()) <= budget:
            break
        event = shrink(event)
    return event


def _untouched(event: SuspectChange, limits: EventLimits) -> bool:
    """True when `limit_values` would change nothing and the event is surely small: scalars
    and short strings only, no snapshot values, short texts (no copy, no encoding)."""
    snapshot, context = event.snapshot, event.context
    if snapshot is not None and snapshot.values:
        return False
    old, new = event.old_value, event.new_value
    if not (type(old) in NUMBER_TYPES and type(new) in NUMBER_TYPES and not context):
        # (else: two numbers and no context, every event of most controllers: no loop)
        longest = min(_SMALL_STRING, (limits.max_value_bytes - 2) // 6)
        for value in (old, new, *context.values()):
            if type(value) in NUMBER_TYPES:
                continue
            if not (isinstance(value, bool | int | float)
                    or (isinstance(value, str) and len(value) <= longest)):
                return False
    reason, actor, approval = event.verdict_reason, event.actor, event.approval
    why = approval.why_not_matched if approval is not None else None
    return ((reason is None or len(reason) <= MAX_TEXT_CHARS)
            and (actor is None or len(actor) <= MAX_TEXT_CHARS)
            and (why is None or len(why) <= MAX_TEXT_CHARS))


def _surely_small(event: SuspectChange) -> bool:
    # A snapshot by reference (its hash, no values) is 64 characters: small.
    if event.snapshot is not None and event.snapshot.values:
        return False
    values = [event.old_value, event.new_value, *event.context.values()]
    return all(
        value is None
        or isinstance(value, bool | int | float)
        or (isinstance(value, str) and len(value) <= _SMALL_STRING)
        for value in values
    )


def _omit(event: SuspectChange, part: str, **update: Any) -> SuspectChange:
    omitted = [*(event.omitted or []), part]
    return event.model_copy(update={**update, "omitted": omitted})


def _without_snapshot_values(event: SuspectChange) -> SuspectChange:
    snapshot = event.snapshot
    if snapshot is None or not snapshot.values:
        return event
    empty = snapshot.model_copy(update={"values": {}})
    return _omit(event, "snapshot.values", snapshot=empty)


def _without_context(event: SuspectChange) -> SuspectChange:
    if not event.context:
        return event
    return _omit(event, "context", context={})


def _with_short_texts(event: SuspectChange) -> SuspectChange:
    """Values to a bare truncation (no head), long texts cut to `_SHORT_TEXT` characters."""
    tiny = EventLimits(max_value_bytes=_SHORT_TEXT, head_chars=0)
    update: dict[str, Any] = {}
    for name in ("old_value", "new_value"):
        value = getattr(event, name)
        if _is_truncation(value):
            assert isinstance(value, dict)
            update[name] = {TRUNCATED_KEY: {**value[TRUNCATED_KEY], "head": ""}}
        else:
            update[name] = limit_value(value, tiny)
    update.update(_cut_texts(event, _SHORT_TEXT))
    return _omit(event, "long texts", **update)
