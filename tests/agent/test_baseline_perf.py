"""The shortcuts that keep baseline saves and change detection cheap at 50,000 tags.

A save re-encodes only the controllers whose tags changed (orjson where the readings are
plain), yet writes what one `json.dump` of everything wrote, up to spelling; detection
settles shared readings by identity, and the baseline adopts a reading that cannot be told
from the one it holds, so later scans hit that shortcut.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.baseline import SNAPSHOT_PIECE, BaselineStore, _reading_to_json
from agent.config import ModbusTag
from agent.detect import detect_changes, next_baseline
from agent.sources.base import Reading

AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def reference_text(store: BaselineStore) -> str:
    """What the store wrote before its encoding was cached: one json.dump of everything."""
    data: dict[str, Any] = {
        "version": 1,
        "controllers": {
            cid: {
                "tags": {k: _reading_to_json(v) for k, v in b.tags.items()},
                "last_seen": b.last_seen.isoformat() if b.last_seen else None,
                "session": b.session,
            }
            for cid, b in store.controllers.items()
        },
    }
    return json.dumps(data, default=str)


def test_saves_write_what_one_dump_wrote_and_follow_every_change(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    store = BaselineStore(path)
    plc, opc = store.get("plc-1"), store.get("opc-1")
    plc.tags = {"a": Reading(1), "b": Reading(2.5), "s": Reading("LOT-1")}
    opc.tags = {"x": Reading(-0.0, AT)}
    opc.session = 'server-start:"2026"'
    store.save()
    assert json.loads(path.read_text()) == json.loads(reference_text(store))

    plc.last_seen = AT  # only the time moves: the cached tags are reused
    store.save()
    assert json.loads(path.read_text()) == json.loads(reference_text(store))

    plc.tags["a"] = Reading(2)  # changed in place, as recipe adoption does
    store.save()
    assert json.loads(path.read_text()) == json.loads(reference_text(store))

    plc.tags = {"b": plc.tags["b"], "a": plc.tags["a"], "s": plc.tags["s"]}  # reordered
    store.save()
    assert json.loads(path.read_text()) == json.loads(reference_text(store))

    loaded = BaselineStore(path)
    assert loaded.controllers["plc-1"].tags == plc.tags
    assert loaded.controllers["plc-1"].last_seen == AT
    assert loaded.controllers["opc-1"].session == 'server-start:"2026"'


def test_an_empty_store_saves_valid_json(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path / "baseline.json")
    store.save()
    assert json.loads((tmp_path / "baseline.json").read_text()) == {"version": 1, "controllers": {}}


def tag(name: str, deadband: float = 0.0) -> ModbusTag:
    return ModbusTag.model_validate(
        {"name": name, "kind": "setpoint", "address": 0, "deadband": deadband}
    )


def test_the_same_reading_object_is_never_a_change() -> None:
    nan = Reading(float("nan"))
    shared = {"a": Reading(1.0), "n": nan}
    assert detect_changes([tag("a"), tag("n")], shared, dict(shared), at=AT) == []


def test_the_baseline_adopts_indistinguishable_readings_only() -> None:
    old = {"a": Reading(1.0), "z": Reading(0.0), "i": Reading(1), "d": Reading(10.0)}
    new = {"a": Reading(1.0), "z": Reading(-0.0), "i": Reading(True), "d": Reading(10.05)}
    tags = [tag("a"), tag("z"), tag("i"), tag("d", deadband=0.1)]
    changes = detect_changes(tags, old, new, at=AT)
    assert changes == []
    updated = next_baseline(old, new, changes)
    assert updated["a"] is new["a"]  # same content: shared from now on
    assert updated["z"] is old["z"] and updated["i"] is old["i"]  # 0.0 vs -0.0, 1 vs True
    assert updated["d"] is old["d"]  # within the deadband: the baseline value stays


def test_a_save_of_many_tags_reencodes_only_changed_pieces_yet_writes_them_all(
    tmp_path: Path,
) -> None:
    path = tmp_path / "baseline.json"
    store = BaselineStore(path)
    opc = store.get("opc-1")
    count = SNAPSHOT_PIECE * 3 + 7
    opc.tags = {f"t{i:04d}": Reading(float(i), AT) for i in range(count)}
    store.save()
    assert json.loads(path.read_text()) == json.loads(reference_text(store))
    pieces = list(store._encoded["opc-1"].pieces)

    opc.tags["t0300"] = Reading(float("nan"), AT)  # second piece, and the slow path there
    opc.tags["t0301"] = Reading("x\ud800")
    store.save()
    assert json.loads(path.read_text()) == json.loads(reference_text(store))
    again = store._encoded["opc-1"].pieces
    assert [a is b for a, b in zip(pieces, again, strict=True)] == [True, False, True, True]

    del opc.tags["t0002"]  # a tag fewer, one more, another order: every piece anew
    opc.tags["new"] = Reading(True)
    opc.tags = dict(reversed(opc.tags.items()))
    store.save()
    assert json.loads(path.read_text()) == json.loads(reference_text(store))
    assert list(json.loads(path.read_text())["controllers"]["opc-1"]["tags"]) == list(opc.tags)

    opc.tags = {}
    store.save()
    assert json.loads(path.read_text())["controllers"]["opc-1"]["tags"] == {}
