"""Signatures against the trail entries that bind them (21 CFR 11.70): a ``signatures`` row
must match, field for field, the ``signature`` trail entry it names, on the same record; and
every such trail entry must still have its row. So a signature copied to another record, edited,
or cut away is found, as long as the trail itself verifies (`trail.verify_entries`).

Signatures made before revision 0004 name no trail entry (and their entries no user id); they
are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import orjson

from detectors.records.models import Signature, TrailEntry
from detectors.records.trail import iso

_BOUND = ("user_id", "printed_name", "role", "meaning", "step")


def signature_problems(
    signatures: Mapping[str, Sequence[Signature]], trail: Iterable[TrailEntry],
) -> list[str]:
    """Every signature row without its trail entry, or unlike it, and every signature entry
    without its row, in words (empty: all bound)."""
    entries = {e.seq: e for e in trail if e.field == "signature"}
    problems, bound = [], set()
    for record_id, signed in signatures.items():
        for sig in signed:
            if sig.trail_seq is None:
                continue
            entry = entries.get(sig.trail_seq)
            who = f"record {record_id}: the signature of {sig.user_id!r} as {sig.role.value}"
            if entry is None or entry.record_id != record_id:
                problems.append(f"{who} names trail entry {sig.trail_seq}, which is not a "
                                "signature of this record (copied or forged)")
                continue
            bound.add(entry.seq)
            if _differs(sig, entry):
                problems.append(f"{who} differs from its trail entry {entry.seq} (edited)")
    for seq, entry in sorted(entries.items()):
        body = orjson.loads(entry.new or "{}")
        if seq not in bound and body.get("user_id"):
            problems.append(f"trail entry {seq}: the signature of {body['user_id']!r} on record "
                            f"{entry.record_id} has no signatures row (cut away)")
    return problems


def _differs(sig: Signature, entry: TrailEntry) -> bool:
    body = orjson.loads(entry.new or "{}")
    row = sig.model_dump(mode="json")
    signed_at = None if sig.signed_at is None else iso(sig.signed_at)
    return any(body.get(k) != row[k] for k in _BOUND) or body.get("signed_at") != signed_at \
        or body.get("record_id") != entry.record_id
