"""The evidence snapshot's hash, kept up to date tag by tag instead of rebuilt per batch.

Every suspect event carries the SHA-256 of the canonical JSON of its controller's watched
values at detection (`agent.contract.limits.take_snapshot`). On a 10,000-tag controller that is
a 180 KB document; rebuilding and encoding it for each notification batch cost more CPU than
decoding the notifications themselves. `SnapshotDigest` keeps each value's encoded member
(``"name":value``) in key order and re-encodes only what a batch changed; the hash is over
bytes equal to ``canonical_json(encode_value(values))`` (tests/agent/test_snapshot_digest.py
holds it to that).

Even one join and one SHA-256 pass over all the members per batch (~150 µs for 10,000 tags,
1.5 µs per event of a batch of 100) were a fifth of building an event. So the members are
kept in chunks, each joined once after it changed, and the hash's running state is kept at
every few chunks: a batch's hash re-joins the chunks it changed and hashes on from the last
kept state before the first of them (SHA-256 is a pass from the start, so what follows a
change is hashed again, what precedes it is not).

Example::

    digest = SnapshotDigest(["sp_1", "sp_2"])
    digest.update({"sp_1": Reading(1.0), "sp_2": Reading(float("nan"))})
    digest.sha256(missing=set()) == snapshot_sha256(digest.values(set()))   # True
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping
from typing import Any, cast

from agent.contract import TagValue
from agent.contract.limits import NUMBER_TYPES, value_json
from agent.contract.values import canonical_json, encode_value
from agent.sources.base import Reading


def snapshot_sha256(values: Mapping[str, TagValue]) -> str:
    """The hash `take_snapshot` gives these values, without building the snapshot."""
    return hashlib.sha256(value_json(dict(values))).hexdigest()


class SnapshotDigest:
    """The newest value of each snapshot tag, with its encoded member, in key order.

    ``chunk``: members per chunk; ``checkpoint``: chunks between kept hash states."""

    def __init__(self, names: Iterable[str], *, chunk: int = 64, checkpoint: int = 8) -> None:
        unique = list(dict.fromkeys(names))
        rank = {name: i for i, name in enumerate(sorted(unique))}
        #: Each tag's place among the members (key order), listed in config order: the order
        #: the snapshot's values are listed in.
        self._position = {name: rank[name] for name in unique}
        self._readings: dict[str, Reading] = {}
        # Canonical JSON sorts keys by code point; a name UTF-8 cannot hold (a lone surrogate)
        # is written otherwise, so such a controller takes the slow path (never in practice).
        self._fast = all(_utf8(n) for n in unique)
        self._members: list[bytes | None] = [None] * len(unique)
        self._present = 0
        self._chunk, self._checkpoint = chunk, checkpoint
        #: Each chunk's members joined, None once one of them changed.
        self._chunks: list[bytes | None] = [None] * -(-len(unique) // chunk)
        #: The hash's state before chunk ``c`` (``c`` a multiple of ``checkpoint``), valid
        #: for the chunks before `_stale_from`; and the hash when none is stale.
        self._states: dict[int, Any] = {0: hashlib.sha256(b"{")}
        self._stale_from = 0
        self._sha256: str | None = None
        #: The tags whose value is not a number (`NUMBER_TYPES`): a size limit may cut it.
        self._limitable: set[str] = set()
        #: Every tag's value in config order, kept current once every tag has one.
        self._values: dict[str, TagValue] | None = None

    def __len__(self) -> int:
        """How many of the snapshot's tags have a value."""
        return self._present

    def update(self, readings: Mapping[str, Reading]) -> None:
        """Take the snapshot tags' values from a scan or a notification batch."""
        position, members, known = self._position, self._members, self._readings
        if len(readings) > len(position):
            items = [(n, readings[n]) for n in position if n in readings]
        else:
            items = [(n, r) for n, r in readings.items() if n in position]
        for name, reading in items:
            if known.get(name) is reading:  # the same object: the value stands still
                continue
            known[name] = reading
            i = position[name]
            value = reading.value
            if members[i] is None:
                self._present += 1
                self._values = None  # a new tag: its place in config order is not kept
            elif self._values is not None:
                self._values[name] = value
            if type(value) not in NUMBER_TYPES:
                self._limitable.add(name)
            elif self._limitable:
                self._limitable.discard(name)
            members[i] = canonical_json({name: encode_value(value)})[1:-1]
            c = i // self._chunk
            self._chunks[c] = None
            if c < self._stale_from:
                self._stale_from = c

    def values(self, missing: Collection[str]) -> dict[str, TagValue]:
        """The snapshot's values (config order), without the tags that have no value now."""
        have = self._readings
        if not missing and len(have) == len(self._position):  # the usual case: no tests
            # Kept and copied (in C): building the dict of 10,000 values here cost a ms.
            if self._values is None:
                self._values = {n: have[n].value for n in self._position}
            return self._values.copy()
        return {n: have[n].value for n in self._position if n in have and n not in missing}

    def numbers_only(self) -> bool:
        """True when every value is a number, a boolean or null: none a size limit changes
        (`agent.contract.limits.limit_mapping` would copy the values and look at each)."""
        return not self._limitable

    def sha256(self, missing: Collection[str], encoded: bytes | None = None) -> str:
        """The SHA-256 `snapshot_sha256` gives `values(missing)`; ``encoded``: what
        `encoded` gave for the same ``missing`` (not joined again)."""
        if encoded is None and self._whole(missing):
            return self._chunked_sha256()
        encoded = encoded if encoded is not None else self.encoded(missing)
        if encoded is None:
            return snapshot_sha256(self.values(missing))
        return hashlib.sha256(encoded).hexdigest()

    def encoded(self, missing: Collection[str]) -> bytes | None:
        """``canonical_json(encode_value(self.values(missing)))`` from the members kept, or
        None when they cannot give it (a tag of the snapshot missing, a name UTF-8 cannot
        hold): the values' JSON in a whole snapshot, and what its hash is over."""
        position = self._position
        if not self._fast or any(n in position for n in missing):
            return None
        members = self._members
        if self._present == len(members):
            return b"{" + b",".join(self._joined_chunks()) + b"}"
        present = [m for m in members if m is not None]
        return b"{" + b",".join(present) + b"}"

    def _whole(self, missing: Collection[str]) -> bool:
        """True when the snapshot is every member's (none missing, every one has a value)."""
        return (self._fast and self._present == len(self._members)
                and not any(n in self._position for n in missing))

    def _joined_chunks(self) -> list[bytes]:
        """Every chunk's members joined (only those that changed are joined again)."""
        chunks, size = self._chunks, self._chunk
        members = cast(list[bytes], self._members)
        for c, text in enumerate(chunks):
            if text is None:
                chunks[c] = b",".join(members[c * size : (c + 1) * size])
        return cast(list[bytes], chunks)

    def _chunked_sha256(self) -> str:
        """The hash of every member (`_whole`), hashed on from the last state kept before
        the first chunk that changed."""
        if self._sha256 is not None and self._stale_from == len(self._chunks):
            return self._sha256
        chunks, states, every = self._joined_chunks(), self._states, self._checkpoint
        start = self._stale_from // every * every
        h = states[start].copy()
        for c in range(start, len(chunks)):
            if c % every == 0 and c != start:
                states[c] = h.copy()
            if c:
                h.update(b",")
            h.update(chunks[c])
        h.update(b"}")
        self._stale_from = len(chunks)
        self._sha256 = h.hexdigest()
        return self._sha256


def _utf8(name: str) -> bool:
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True
