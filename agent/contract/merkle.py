"""A Merkle tree over a batch of events: one signature covers the batch, each event verifies alone.

Signing costs the agent more CPU per event than decoding the OPC UA notification it came from
(Ed25519 with ``cryptography``: ~33 µs a signature). So the agent signs one root per spool
append (`agent.contract.signing.EventSigner.sign_batch`) and gives every event the proof that
its bytes are a leaf under that root. The events then travel apart (other partitions, the
dead-letter topic, record evidence) and each still checks on its own: leaf hash, the hashes up
the proof, the root signature.

The tree is RFC 9162's (Certificate Transparency v2), with SHA-256 and its domain separation:

- leaf hash: ``SHA-256(0x00 || signed bytes)``, the signed bytes being the event's canonical JSON
  without ``signature`` (exactly what a plain ``ed25519`` signature covers);
- interior node: ``SHA-256(0x01 || left || right)``; the tree over ``n`` leaves splits at the
  largest power of two below ``n`` (RFC 9162 §2.1.1), so no leaf is duplicated;
- what is signed: `ROOT_DOMAIN`, the tree size (8 bytes, big-endian) and the root: the size is
  bound by the signature (a proof for leaf 0 of a tree of 3 also fits a tree of 4 otherwise),
  and the domain keeps a root signature from ever being read as an event signature (an event's
  signed bytes start with ``{``).

A tree covers at most `MAX_TREE_SIZE` events, so a proof is at most `MAX_PROOF_HASHES` hashes
(the verifier refuses a longer one before hashing anything); the agent splits a larger append
into several trees.

Example::

    >>> leaves = [leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c")]
    >>> root = tree_root(leaves)
    >>> root, paths = audit_paths(leaves)
    >>> root == tree_root(leaves) == root_from_proof(leaves[2], 2, 3, paths[2])
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

#: Prefixes of RFC 9162 §2.1.1: a leaf can never pass for an interior node.
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
#: What precedes the tree size and root in the signed message.
ROOT_DOMAIN = b"otwatch-event-batch/1\x00"
#: The most events one root signature covers (a larger append is split).
MAX_TREE_SIZE = 256
#: The longest proof a tree of `MAX_TREE_SIZE` leaves gives (log2 of it).
MAX_PROOF_HASHES = (MAX_TREE_SIZE - 1).bit_length()
HASH_BYTES = 32

_sha256 = hashlib.sha256


def leaf_hash(signed: bytes) -> bytes:
    """The leaf of an event whose signed bytes (canonical JSON less ``signature``) are these."""
    return _sha256(LEAF_PREFIX + signed).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(NODE_PREFIX + left + right).digest()


def root_message(root: bytes, size: int) -> bytes:
    """The bytes the agent signs for a tree of ``size`` leaves with this ``root``."""
    return ROOT_DOMAIN + size.to_bytes(8, "big") + root


def tree_root(leaves: Sequence[bytes]) -> bytes:
    """The root of the tree over ``leaves`` (at least one)."""
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(tree_root(leaves[:k]), tree_root(leaves[k:]))


def audit_paths(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root, and each leaf's proof: the sibling hashes from the leaf up to the root
    (RFC 9162 §2.1.3.1), for all leaves in one pass over the tree.

    Built bottom-up, a level at a time: pairing neighbours and carrying an odd last node up
    unchanged gives RFC 9162's tree (split at the largest power of two below the size), with
    no recursion and no copies of the leaves (one tree per spool append)."""
    n = len(leaves)
    paths: list[list[bytes]] = [[] for _ in range(n)]
    level, width = list(leaves), 1  # width: the leaves under a whole node of this level
    while len(level) > 1:
        above = []
        for j in range(0, len(level) - 1, 2):
            left, right = level[j], level[j + 1]
            middle = (j + 1) * width
            for i in range(j * width, middle):
                paths[i].append(right)
            for i in range(middle, min(middle + width, n)):
                paths[i].append(left)
            above.append(node_hash(left, right))
        if len(level) % 2:
            above.append(level[-1])
        level, width = above, 2 * width
    return level[0], paths


def joined_audit_paths(
    leaves: Sequence[bytes], encode: Callable[[bytes], bytes], sep: bytes = b","
) -> tuple[bytes, list[bytes]]:
    """`audit_paths`, each proof written as its hashes ``encode``-d and joined by ``sep``:
    ``sep.join(map(encode, path))`` for each leaf's ``path``, and the same root.

    The leaves under one node share the proof from that node up: it is written once per node,
    top down, and each leaf's proof is its sibling's text ahead of its parent's. So each hash
    is encoded once and a batch costs two joins per leaf, where encoding every proof on its
    own cost a list, a hash lookup per level and a join per leaf (a third of signing a batch).
    """
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        level = levels[-1]
        above = [node_hash(level[j], level[j + 1]) for j in range(0, len(level) - 1, 2)]
        if len(level) % 2:  # the odd last node goes up unchanged: no sibling on this level
            above.append(level[-1])
        levels.append(above)
    uppers = [b""]  # the root's proof: no hash
    for level in reversed(levels[:-1]):
        width, texts = len(level), []
        encoded = list(map(encode, level))  # each hash once (one call in C for a C encode)
        for j in range(width):
            upper = uppers[j >> 1]
            if j ^ 1 < width:
                sibling = encoded[j ^ 1]
                texts.append(sibling + sep + upper if upper else sibling)
            else:
                texts.append(upper)
        uppers = texts
    return levels[-1][0], uppers


def root_from_proof(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root that ``leaf`` at ``index`` of a tree of ``size`` leads to through ``path``, or
    None when the path does not fit that index and size (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size or len(path) > MAX_PROOF_HASHES:
        return None
    fn, sn, r = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(sibling, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, sibling)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def _split(n: int) -> int:
    """The largest power of two below ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)
