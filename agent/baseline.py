"""The persisted baseline: last value and source timestamp of every watched tag.

Two parts. A snapshot file, written atomically (temporary file, fsync, rename) every few
seconds, so a power cut leaves either the old or the new snapshot, never half of one. And a
journal in the spool database: the tags whose baseline a change moved are written (one
row per append) in the same transaction as the change's events (`agent.spool.Spool.append`),
so what is in the spool and what the baseline says can never disagree, and a change costs
no snapshot. On
start the agent replays the journal over the snapshot (`BaselineStore.replay`); after a
snapshot is durable, the journal up to it is trimmed. Replaying an entry twice is harmless:
the last entry of a tag wins.

On start the agent compares each controller's first scan with the baseline, which is how a
change made while the agent was down is still found.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import is_
from pathlib import Path
from typing import Any

import orjson

from agent.errors import ConfigError
from agent.runtime.files import write_atomically
from agent.sources.base import Reading


@dataclass
class ControllerBaseline:
    tags: dict[str, Reading] = field(default_factory=dict)
    #: When the agent last had a complete scan of this controller.
    last_seen: datetime | None = None
    #: The controller's session identity (OPC UA server start time) at the last scan.
    session: str = ""


def _reading_to_json(r: Reading) -> dict[str, Any]:
    return {"value": r.value, "source_ts": r.source_ts.isoformat() if r.source_ts else None}


_PLAIN_TYPES = {str, int, bool, float, type(None)}
_PLAIN_ZONES = {None, UTC}


def _reading_from_json(d: dict[str, Any]) -> Reading:
    ts = d.get("source_ts")
    return Reading(d.get("value"), datetime.fromisoformat(ts) if ts else None)


class BaselineStore:
    """All controllers' baselines in one JSON file under the agent's state directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.controllers: dict[str, ControllerBaseline] = self._load()
        #: Per controller, the tags last written and their JSON text: a save re-encodes only
        #: the pieces of `SNAPSHOT_PIECE` tags where a reading changed (most saves only move
        #: `last_seen`; under a stream of changes, most pieces still stand still).
        self._encoded: dict[str, _EncodedTags] = {}

    def _load(self) -> dict[str, ControllerBaseline]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise self._unreadable(exc) from None
        try:
            return self._parse(data)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise self._unreadable(f"not a baseline: {type(exc).__name__}: {exc}") from None

    def _unreadable(self, why: object) -> ConfigError:
        return ConfigError(
            f"{self.path}: the baseline file is unreadable ({why}); fix: restore it from a "
            "backup, or delete it to learn a new baseline "
            "(changes made meanwhile are then missed)"
        )

    @staticmethod
    def _parse(data: Any) -> dict[str, ControllerBaseline]:
        out = {}
        for cid, entry in data.get("controllers", {}).items():
            seen = entry.get("last_seen")
            out[cid] = ControllerBaseline(
                tags={k: _reading_from_json(v) for k, v in entry.get("tags", {}).items()},
                last_seen=datetime.fromisoformat(seen) if seen else None,
                session=entry.get("session", ""),
            )
        return out

    def replay(self, journal: Iterable[tuple[str, str]]) -> int:
        """Apply journalled moves (controller, its moved tags as `encode_tags` wrote them),
        oldest first; returns how many readings. Call before the watchers take their
        baselines."""
        count = 0
        for cid, text in journal:
            tags = self.get(cid).tags
            for tag, reading in json.loads(text).items():
                tags[tag] = _reading_from_json(reading)
                count += 1
        return count

    def get(self, controller_id: str) -> ControllerBaseline:
        return self.controllers.setdefault(controller_id, ControllerBaseline())

    def save(self) -> None:
        controllers = ", ".join(
            f"{json.dumps(cid)}: {self._encode_controller(cid, b)}"
            for cid, b in self.controllers.items()
        )
        # The same text json.dump wrote for the whole structure, assembled from cached parts.
        text = f'{{"version": 1, "controllers": {{{controllers}}}}}'
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, text)

    def _encode_controller(self, cid: str, baseline: ControllerBaseline) -> str:
        tags = self._encode_tags(cid, baseline.tags)
        seen = json.dumps(baseline.last_seen.isoformat() if baseline.last_seen else None)
        return f'{{"tags": {tags}, "last_seen": {seen}, "session": {json.dumps(baseline.session)}}}'

    def _encode_tags(self, cid: str, tags: dict[str, Reading]) -> str:
        names, readings = list(tags), list(tags.values())
        cached = self._encoded.get(cid)
        old = cached if cached is not None and cached.names == names else None
        if old is not None and all(map(is_, old.readings, readings)):
            return old.text  # nothing moved (most saves): not even a join
        pieces = []
        for start in range(0, len(names), SNAPSHOT_PIECE):
            end = start + SNAPSHOT_PIECE
            if old is not None and all(map(is_, old.readings[start:end], readings[start:end])):
                pieces.append(old.pieces[start // SNAPSHOT_PIECE])
            else:  # the members of the piece's JSON object, without its braces
                piece = dict(zip(names[start:end], readings[start:end], strict=True))
                pieces.append(encode_tags(piece)[1:-1])
        text = f"{{{','.join(pieces)}}}"
        self._encoded[cid] = _EncodedTags(names, readings, pieces, text)
        return text


#: Tags per piece of a controller's snapshot text (`BaselineStore._encode_tags`): small enough
#: that a few changes re-encode little of 10,000 tags, large enough that the pieces are few.
SNAPSHOT_PIECE = 256


@dataclass
class _EncodedTags:
    """A controller's tags as last saved: names and readings in order, the JSON text of each
    piece of `SNAPSHOT_PIECE` of them, and the whole text."""

    names: list[str]
    readings: list[Reading]
    pieces: list[str]
    text: str


def encode_tags(tags: Mapping[str, Reading]) -> str:
    """A controller's tags as the JSON text the snapshot keeps (and the journal, for the tags
    an append moves: `agent.spool.Spool.append`).

    When every reading is a plain one (`_plain_readings`), orjson writes them, timestamps
    too, in one call: a third of the CPU of the standard library's (``isoformat`` alone was
    most of that), which at 10,000 tags and 1,000 changes a second was 8% of the agent.
    Anything else as before. Both read back the same readings (a test holds it).
    """
    if _plain_readings(tags.values()):
        plain = {k: {"value": r.value, "source_ts": r.source_ts} for k, r in tags.items()}
        try:
            return orjson.dumps(plain).decode()
        except orjson.JSONEncodeError:  # an integer over 64 bits, a lone surrogate
            pass
    return json.dumps({k: _reading_to_json(v) for k, v in tags.items()}, default=str)


def _plain_readings(readings: Iterable[Reading]) -> bool:
    """Whether orjson writes these readings as the standard library does, up to spelling:
    scalar values, no NaN or infinity (orjson would write null), timestamps naive or in UTC
    (orjson rounds an offset to whole minutes). Passes over C loops, not a check per tag."""
    listed = list(readings)
    values = [r.value for r in listed]
    if not set(map(type, values)) <= _PLAIN_TYPES:
        return False
    # A NaN or an infinity makes the sum so; an overflow of finite values only takes the
    # slow path.
    if not math.isfinite(sum([v for v in values if type(v) is float])):
        return False
    zones = {r.source_ts.tzinfo for r in listed if r.source_ts is not None}
    return zones <= _PLAIN_ZONES
