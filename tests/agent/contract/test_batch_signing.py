"""One signature per batch (``ed25519-merkle``): each event still verifies on its own, and every
change to an event, its proof, its index, the tree size or the root signature is named."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from agent.contract import (
    EventSigner,
    SignatureStatus,
    SuspectChange,
    VerifiedRoots,
    verify_event,
)
from agent.contract.limits import RESERVED_BYTES
from agent.contract.merkle import (
    MAX_PROOF_HASHES,
    MAX_TREE_SIZE,
    audit_paths,
    joined_audit_paths,
    leaf_hash,
    root_from_proof,
    tree_root,
)
from agent.contract.signing import signed_bytes
from tests.support.events import make_event

SIGNER = EventSigner.generate()
KEYS = {SIGNER.key_id: SIGNER.public_key_b64}
Body = dict[str, Any]


def _rfc_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 written out: MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while 2 * k < len(leaves):
        k *= 2
    left, right = _rfc_root(leaves[:k]), _rfc_root(leaves[k:])
    return hashlib.sha256(b"\x01" + left + right).digest()


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 31, 100, MAX_TREE_SIZE])
def test_every_leaf_proves_the_rfc_root_and_no_other_place(size: int) -> None:
    leaves = [leaf_hash(str(i).encode()) for i in range(size)]
    root, paths = audit_paths(leaves)
    assert root == tree_root(leaves) == _rfc_root(leaves)
    assert max(len(p) for p in paths) <= MAX_PROOF_HASHES
    for i, path in enumerate(paths):
        assert root_from_proof(leaves[i], i, size, path) == root
        if size > 1:
            other = (i + 1) % size
            assert root_from_proof(leaves[i], other, size, path) != root
    assert root_from_proof(leaves[0], size, size, paths[0]) is None  # outside the tree


@pytest.mark.parametrize("size", [*range(1, 34), 100, 255, MAX_TREE_SIZE])
def test_joined_proofs_are_the_proofs_written_one_by_one(size: int) -> None:
    leaves = [leaf_hash(str(i).encode()) for i in range(size)]
    root, paths = audit_paths(leaves)
    joined_root, texts = joined_audit_paths(leaves, base64.b64encode, b";")
    assert joined_root == root == _rfc_root(leaves)
    assert texts == [b";".join(base64.b64encode(h) for h in path) for path in paths]


def test_a_leaf_is_never_an_interior_node() -> None:
    assert leaf_hash(b"x") != hashlib.sha256(b"x").digest()
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert leaf_hash(a + b) != tree_root([a, b])


def _batch(n: int, first_seq: int = 1) -> list[bytes]:
    events = [make_event(new_value=float(i), context={"lot": f"L-{i}"}) for i in range(n)]
    return [raw for _, raw in SIGNER.sign_batch(events, first_seq=first_seq)]


@pytest.mark.parametrize("n", [2, 3, 17, MAX_TREE_SIZE, MAX_TREE_SIZE + 3])
def test_each_event_of_a_batch_verifies_alone(n: int) -> None:
    events = [make_event(new_value=float(i)) for i in range(n)]
    signed = SIGNER.sign_batch(events, first_seq=41)
    cache = VerifiedRoots()
    for i, (event, raw) in enumerate(signed):
        assert event.seq == 41 + i and event.signature is None
        parsed = SuspectChange.model_validate_json(raw)
        assert parsed.to_json() == raw and parsed.model_copy(update={"signature": None}) == event
        assert verify_event(raw, KEYS).status is SignatureStatus.VALID
        assert verify_event(raw, KEYS, cache=cache).ok
        body = orjson.loads(raw)
        assert body["signature"]["alg"] == "ed25519-merkle"
        unsigned = orjson.loads(events[i].to_json()) | {"seq": 41 + i}
        assert signed_bytes(body) == signed_bytes(unsigned)
    # One root signature per tree of at most MAX_TREE_SIZE events, each checked once.
    assert len(cache) == -(-n // MAX_TREE_SIZE)


def test_a_batch_of_one_is_signed_plain() -> None:
    event = make_event()
    ((numbered, raw),) = SIGNER.sign_batch([event], first_seq=7)
    assert numbered.seq == 7
    assert raw == SIGNER.sign_to_json(event, seq=7)[1]  # Ed25519 signatures are deterministic
    assert "proof" not in orjson.loads(raw)["signature"]
    assert verify_event(raw, KEYS).ok


def test_single_signature_events_still_verify() -> None:
    raw = SIGNER.sign_to_json(make_event(), seq=3)[1]
    assert orjson.loads(raw)["signature"]["alg"] == "ed25519"
    assert verify_event(raw, KEYS, cache=VerifiedRoots()).ok


def _b64_flip(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def _spare_bit_set(text: str) -> str:
    """The same 32 bytes spelt another way: 43 characters carry 258 bits, 2 of them spare."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    assert base64.b64decode(text[:42] + alphabet[alphabet.index(text[42]) ^ 1] + "=") == \
        base64.b64decode(text)
    return text[:42] + alphabet[alphabet.index(text[42]) ^ 1] + "="


def _proof(body: Body) -> Body:
    proof: Body = body["signature"]["proof"]
    return proof


def _set_index(value: int) -> Callable[[Body], None]:
    return lambda body: _proof(body).update(leaf_index=value)


Tamper = Callable[[Body], None]
BAD: dict[str, Tamper] = {
    "event-bytes": lambda body: body.update(new_value=999.0),
    "seq": lambda body: body.update(seq=body["seq"] + 1),
    "sibling-hash": lambda body: _proof(body)["path"].__setitem__(
        0, _b64_flip(_proof(body)["path"][0])),
    "last-sibling": lambda body: _proof(body)["path"].__setitem__(
        -1, _b64_flip(_proof(body)["path"][-1])),
    "index": _set_index(4),
    "index-far": _set_index(0),
    "tree-size": lambda body: _proof(body).update(tree_size=7),
    "shorter-path": lambda body: _proof(body)["path"].pop(),
    "root-signature": lambda body: body["signature"].update(
        value=_b64_flip(body["signature"]["value"])),
}


@pytest.mark.parametrize("tamper", list(BAD), ids=list(BAD))
def test_every_tamper_is_a_bad_signature(tamper: str) -> None:
    raws = _batch(8)
    body = orjson.loads(raws[5])
    BAD[tamper](body)
    cache = VerifiedRoots()
    assert verify_event(raws[0], KEYS, cache=cache).ok  # the batch's root is cached
    for use in (None, cache):
        check = verify_event(orjson.dumps(body), KEYS, cache=use)
        assert check.status is SignatureStatus.BAD_SIGNATURE, (tamper, check.reason)


def test_proofs_swapped_between_events_of_one_batch_are_bad_signatures() -> None:
    a, b = (orjson.loads(raw) for raw in _batch(5)[1:3])
    a["signature"], b["signature"] = b["signature"], a["signature"]
    for body in (a, b):
        assert verify_event(body, KEYS).status is SignatureStatus.BAD_SIGNATURE


def test_a_forged_root_is_never_cached() -> None:
    body = orjson.loads(_batch(4)[2])
    body["signature"]["value"] = _b64_flip(body["signature"]["value"])
    cache = VerifiedRoots()
    assert verify_event(body, KEYS, cache=cache).status is SignatureStatus.BAD_SIGNATURE
    assert len(cache) == 0
    stranger = {SIGNER.key_id: EventSigner.generate().public_key_b64}
    assert verify_event(_batch(4)[0], stranger, cache=cache).status is SignatureStatus.BAD_SIGNATURE
    assert len(cache) == 0


def test_the_cache_is_bounded_and_keeps_the_recent_roots() -> None:
    cache = VerifiedRoots(max_entries=2)
    batches = [_batch(3) for _ in range(3)]
    for raws in batches:
        assert verify_event(raws[0], KEYS, cache=cache).ok
    assert len(cache) == 2
    # a cached root does not stand for another key under the same id
    other = {SIGNER.key_id: EventSigner.generate().public_key_b64}
    assert verify_event(batches[2][1], other, cache=cache).status is SignatureStatus.BAD_SIGNATURE


MALFORMED: dict[str, Tamper] = {
    "no-proof": lambda body: body["signature"].pop("proof"),
    "proof-on-plain": lambda body: body["signature"].update(alg="ed25519"),
    "index-outside": _set_index(8),
    "negative-index": _set_index(-1),
    "size-zero": lambda body: _proof(body).update(tree_size=0),
    "size-over-cap": lambda body: _proof(body).update(tree_size=MAX_TREE_SIZE + 1),
    "path-too-long": lambda body: _proof(body).update(
        path=_proof(body)["path"] * (MAX_PROOF_HASHES + 1)),
    "hash-not-base64": lambda body: _proof(body)["path"].__setitem__(0, "!" * 43 + "="),
    "hash-too-short": lambda body: _proof(body)["path"].__setitem__(0, "AAAA"),
    "hash-not-canonical": lambda body: _proof(body)["path"].__setitem__(
        0, _spare_bit_set(_proof(body)["path"][0])),
    "extra-member": lambda body: _proof(body).update(root="x"),
    "index-as-text": lambda body: _proof(body).update(leaf_index=str(_proof(body)["leaf_index"])),
    "size-as-float": lambda body: _proof(body).update(tree_size=8.0),
    "path-not-a-list": lambda body: _proof(body).update(path="abc"),
}


@pytest.mark.parametrize("tamper", list(MALFORMED), ids=list(MALFORMED))
def test_a_wrong_shaped_proof_is_malformed(tamper: str) -> None:
    body = orjson.loads(_batch(8)[5])
    MALFORMED[tamper](body)
    check = verify_event(orjson.dumps(body), KEYS, cache=VerifiedRoots())
    assert check.status is SignatureStatus.MALFORMED, (tamper, check.reason)


def test_the_largest_signature_fits_the_room_an_event_keeps() -> None:
    events = [make_event() for _ in range(MAX_TREE_SIZE)]
    signed = SIGNER.sign_batch(events, first_seq=2**63 - MAX_TREE_SIZE)
    unsigned = len(events[0].to_json())
    longest = max(len(raw) for _, raw in signed)
    assert longest - unsigned <= RESERVED_BYTES  # the seq and the signature member (~600)
