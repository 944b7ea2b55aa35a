"""The signer's batch messages written part by part (the signature member around its leaf
index and path, the leaf hashed without joining the halves) are byte for byte what the
straightforward writer gives: `canonical_json` of the member, ``leaf_hash`` of the joined
signed bytes (the writer as it was, kept here as the reference)."""

from __future__ import annotations

import base64
from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.contract import EventSigner, SuspectChange, verify_event
from agent.contract.merkle import MAX_TREE_SIZE, audit_paths, leaf_hash, node_hash, root_message
from agent.contract.signing import ALG, ALG_MERKLE, _halves
from agent.contract.values import canonical_json
from tests.agent.contract.test_encode import events
from tests.support.events import make_event

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference(signer: EventSigner, events: Sequence[SuspectChange],
              first_seq: int | None) -> list[bytes]:
    """`EventSigner.batch_messages` as first written: one tree per `MAX_TREE_SIZE` events."""
    out: list[bytes] = []
    for start in range(0, len(events), MAX_TREE_SIZE):
        chunk = events[start : start + MAX_TREE_SIZE]
        seq = None if first_seq is None else first_seq + start
        halves = [_halves(e, None if seq is None else seq + i) for i, e in enumerate(chunk)]
        if len(chunk) == 1:
            ((head, tail),) = halves
            value = base64.b64encode(signer.private_key.sign(head + b"," + tail)).decode()
            member = canonical_json({"alg": ALG, "key_id": signer.key_id, "value": value})
            out.append(head + b',"signature":' + member + b"," + tail)
            continue
        root, paths = audit_paths([leaf_hash(head + b"," + tail) for head, tail in halves])
        size = len(chunk)
        value = base64.b64encode(signer.private_key.sign(root_message(root, size))).decode()
        for i, ((head, tail), path) in enumerate(zip(halves, paths, strict=True)):
            member = canonical_json({
                "alg": ALG_MERKLE, "key_id": signer.key_id, "value": value,
                "proof": {"leaf_index": i, "tree_size": size,
                          "path": [base64.b64encode(h).decode() for h in path]},
            })
            out.append(head + b',"signature":' + member + b"," + tail)
    return out


key_ids = st.one_of(st.just(None), st.text(min_size=1, max_size=20), st.just("k\ud800\"\\"))


@SETTINGS
@given(st.lists(events, min_size=1, max_size=7), st.none() | st.integers(0, 2**62), key_ids)
def test_the_batch_messages_are_the_reference_bytes(
    batch: list[SuspectChange], first_seq: int | None, key_id: str | None,
) -> None:
    signer = EventSigner.generate()
    if key_id is not None:  # any text: the member escapes it as canonical JSON does
        signer = EventSigner(signer.private_key, key_id)
    assert signer.batch_messages(batch, first_seq=first_seq) == reference(
        signer, batch, first_seq)


@SETTINGS
@given(events, st.none() | st.integers(0, 2**40))
def test_the_halves_are_the_event_cut_where_its_signature_goes(
    event: SuspectChange, seq: int | None,
) -> None:
    head, tail = _halves(event, seq)
    unsigned = event.model_copy(update={"signature": None, "seq": event.seq if seq is None
                                        else seq})
    assert head + b',"signature":null,' + tail == unsigned.to_json()


def test_nul_and_signature_texts_in_an_event_do_not_move_the_cut() -> None:
    odd = '\x00,"signature":\x00'
    event = make_event(verdict_reason=odd, actor=odd, new_value=odd,
                       context={odd: odd, "signature": None})
    head, tail = _halves(event, 3)
    assert head + b',"signature":null,' + tail == event.model_copy(
        update={"seq": 3}).to_json()
    signer = EventSigner.generate()
    keys = {signer.key_id: signer.public_key_b64}
    assert all(verify_event(m, keys).ok for m in signer.batch_messages([event] * 3, first_seq=1))
    assert verify_event(signer.batch_messages([event])[0], keys).ok


def test_a_batch_over_one_tree_is_the_reference_bytes_and_verifies() -> None:
    signer = EventSigner.generate()
    batch = [make_event(new_value=float(i), seq=0) for i in range(MAX_TREE_SIZE + 45)]
    messages = signer.batch_messages(batch, first_seq=7)
    assert messages == reference(signer, batch, 7)
    keys = {signer.key_id: signer.public_key_b64}
    assert all(verify_event(m, keys).ok for m in messages[:3] + messages[-3:])


def _reference_paths(leaves: list[bytes], offset: int, paths: list[list[bytes]]) -> bytes:
    """RFC 9162 §2.1.3.1 as written there: split at the largest power of two, recurse."""
    n = len(leaves)
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    left = _reference_paths(leaves[:k], offset, paths)
    right = _reference_paths(leaves[k:], offset + k, paths)
    for i in range(offset, offset + k):
        paths[i].append(right)
    for i in range(offset + k, offset + n):
        paths[i].append(left)
    return node_hash(left, right)


def test_the_paths_built_bottom_up_are_rfc_9162s_for_every_tree_size() -> None:
    for size in range(1, MAX_TREE_SIZE + 1):
        leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(size)]
        expected: list[list[bytes]] = [[] for _ in leaves]
        root = _reference_paths(leaves, 0, expected)
        assert audit_paths(leaves) == (root, expected)
