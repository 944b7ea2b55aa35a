"""The incremental snapshot hash equals the hash of the whole snapshot, whatever the values."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.contract.limits import NUMBER_TYPES, EventLimits, take_snapshot, value_json
from agent.detect import same_value
from agent.snapshot_digest import SnapshotDigest, snapshot_sha256
from agent.sources.base import Reading

NAMES = ["sp_b", "sp_a", "Zeta", "ümlaut", "sp_10", "sp_9", "\u03b1-tag"]

values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from([-0.0, "\ud800 lone", 2**64, -(2**63) - 1]),
    st.dictionaries(st.text(max_size=5), st.floats(allow_nan=True) | st.text(max_size=5),
                    max_size=3),
)
batches = st.lists(st.dictionaries(st.sampled_from(NAMES), values, max_size=len(NAMES)),
                   min_size=1, max_size=5)


@settings(max_examples=200, deadline=None)
@given(batches, st.sets(st.sampled_from(NAMES)))
def test_the_hash_equals_the_whole_snapshots_after_every_batch(
    scans: list[dict[str, object]], missing: set[str]
) -> None:
    digest = SnapshotDigest(NAMES)
    latest: dict[str, object] = {}
    for scan in scans:
        digest.update({name: Reading(value) for name, value in scan.items()})  # type: ignore[arg-type]
        latest.update(scan)
        for gone in (set(), missing):
            expected = {n: latest[n] for n in NAMES if n in latest and n not in gone}
            assert same_value(digest.values(gone), expected)
            assert digest.sha256(gone) == snapshot_sha256(expected)
            assert digest.sha256(gone) == take_snapshot(expected, EventLimits()).sha256  # type: ignore[arg-type]
            encoded = digest.encoded(gone)
            assert (encoded is None) == bool(gone)  # every name here is UTF-8
            if encoded is not None:
                assert encoded == value_json(expected)
                assert digest.sha256(gone, encoded) == digest.sha256(gone)


def test_a_reading_that_stands_still_is_not_encoded_again_and_a_new_one_is() -> None:
    digest = SnapshotDigest(["a", "b"])
    still = Reading(1.5)
    digest.update({"a": still, "b": Reading(2)})
    first = digest.sha256(set())
    digest.update({"a": still})
    assert digest.sha256(set()) == first
    digest.update({"a": Reading(float("nan"))})
    assert digest.sha256(set()) == snapshot_sha256({"a": float("nan"), "b": 2}) != first
    assert len(digest) == 2


def test_tags_outside_the_snapshot_are_ignored() -> None:
    digest = SnapshotDigest(["a"])
    digest.update({"a": Reading(1), "other": Reading(2)})
    assert digest.values(set()) == {"a": 1}
    assert digest.sha256(set()) == snapshot_sha256({"a": 1})


MANY = [f"tag_{i:03d}" for i in range(41)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(MANY), values, max_size=12), min_size=1,
                max_size=8),
       st.integers(1, 5), st.integers(1, 4))
def test_the_hash_kept_by_chunks_equals_the_whole_snapshots(
    scans: list[dict[str, object]], chunk: int, checkpoint: int
) -> None:
    """Small chunks, states kept every few: a change in any chunk (the first, the last, one
    between two kept states) gives the hash of the whole snapshot, and nothing stale."""
    digest = SnapshotDigest(MANY, chunk=chunk, checkpoint=checkpoint)
    latest: dict[str, object] = {name: i for i, name in enumerate(MANY)}
    digest.update({name: Reading(value) for name, value in latest.items()})  # type: ignore[arg-type]
    assert digest.sha256(set()) == snapshot_sha256(latest)  # type: ignore[arg-type]
    for scan in scans:
        digest.update({name: Reading(value) for name, value in scan.items()})  # type: ignore[arg-type]
        latest.update(scan)
        expected = snapshot_sha256(latest)  # type: ignore[arg-type]
        assert digest.sha256(set()) == expected
        assert digest.sha256(set()) == expected  # again, nothing changed: the hash kept
        assert digest.encoded(set()) == value_json(latest)
        values = digest.values(set())
        assert same_value(values, latest) and list(values) == MANY  # config order
        values[MANY[0]] = "changed by its reader"  # a copy: the digest's values stay
        assert digest.numbers_only() == all(type(v) in NUMBER_TYPES for v in latest.values())
        assert same_value(digest.values(set()), latest)
        assert digest.sha256({MANY[3]}) == snapshot_sha256(
            {n: v for n, v in latest.items() if n != MANY[3]})  # type: ignore[arg-type]
