"""Ed25519 signatures over events: the agent signs each one, the classifier checks it.

A forged event (someone who can write to the suspect topic) is then a finding, not a record.

**What is signed.** The canonical JSON of the event's JSON object without its ``signature``
member: orjson with sorted keys and no whitespace (`agent.contract.values.canonical_json`),
UTF-8. The agent publishes exactly those bytes with ``signature`` added (`SuspectChange.to_json`
is canonical too), so a verifier that parses the raw message with orjson, pops ``signature``
and dumps the rest the same way gets the signed bytes back; it never re-serialises a model
(a reader whose model has more or fewer fields would get other bytes). The signature is thus
over the content: another spelling of the same JSON (``230e0`` for ``230.0``, escapes)
verifies too, and means the same.

**The signature member.** ``{"key_id": "<16 hex>", "alg": "ed25519", "value": "<base64>"}``.
``key_id`` is `key_id_of` the public key: the first 16 hex digits of the SHA-256 of its 32 raw
bytes. Keys are written as base64 of their 32 raw bytes (private: the seed; public: the
point), as the approvals keys are.

**Batches** (``alg`` ``ed25519-merkle``, since the agent signs per spool append:
`EventSigner.sign_batch`). One signature per batch of up to `MAX_TREE_SIZE` events, over the
root of a Merkle tree whose leaves are the events' signed bytes (`agent.contract.merkle`); each
event carries the root's signature and its own proof: ``{"alg": "ed25519-merkle", "key_id":
..., "value": "<base64 root signature>", "proof": {"leaf_index": i, "tree_size": n, "path":
["<base64 sibling hash>", ...]}}``. The event alone verifies: its leaf hash, hashed up the
proof, gives the root the signature is checked against. A batch of one event is signed plain
``ed25519`` (what classifiers before ``ed25519-merkle`` read). A classifier must read
``ed25519-merkle`` before its agents are upgraded (older ones refuse the event).

**Checking.** `verify_event` never raises: it says `SignatureStatus.VALID`, or why not:
``missing`` (no signature: a ``/1`` event, or a forged one), ``unknown_key`` (a key id the
reader does not trust), ``bad_signature`` (the bytes were changed, or signed by another key),
``malformed`` (not a JSON object, or a signature member of the wrong shape: a proof of the
wrong shape or longer than a tree of `MAX_TREE_SIZE` gives). A changed event, proof, index or
tree size is ``bad_signature``. With a `VerifiedRoots` cache (the classifier keeps one), a
batch's root signature is checked once; its other events cost a few SHA-256 passes each.

Example::

    >>> signer = EventSigner.generate()
    >>> signed = signer.sign(event)                  # the event with its signature
    >>> raw = signed.to_json()                       # what the agent publishes
    >>> check = verify_event(raw, {signer.key_id: signer.public_key_b64})
    >>> check.status, check.ok
    (<SignatureStatus.VALID: 'valid'>, True)
    >>> forged = raw.replace(b"press-01", b"press-02")
    >>> verify_event(forged, {signer.key_id: signer.public_key_b64}).status
    <SignatureStatus.BAD_SIGNATURE: 'bad_signature'>
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import string
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agent.contract.encode import event_body, event_json, event_members
from agent.contract.events import EventSignature, MerkleProof, SuspectChange
from agent.contract.merkle import (
    LEAF_PREFIX,
    MAX_TREE_SIZE,
    joined_audit_paths,
    leaf_hash,
    root_from_proof,
    root_message,
)
from agent.contract.values import canonical_json

ALG: Final = "ed25519"
ALG_MERKLE: Final = "ed25519-merkle"
SIGNATURE_MEMBER = "signature"

PublicKey = Ed25519PublicKey | str


class SignatureStatus(StrEnum):
    VALID = "valid"
    MISSING = "missing"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed"


@dataclass(frozen=True, slots=True)
class EventCheck:
    """The outcome of `verify_event`: the status, the key id named (if any) and why."""

    status: SignatureStatus
    reason: str
    key_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is SignatureStatus.VALID


def public_key_b64(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def key_id_of(key: PublicKey) -> str:
    """The key id of a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    public = load_public_key(key) if isinstance(key, str) else key
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(text: str) -> Ed25519PublicKey:
    """A public key from base64 of its 32 raw bytes; `ValueError` saying what is wrong."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not an Ed25519 public key (base64 of 32 raw bytes): {exc}") from None


def load_private_key(text: str) -> Ed25519PrivateKey:
    """A private key from base64 of its 32-byte seed; `ValueError` saying what is wrong."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PrivateKey.from_private_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not an Ed25519 private key (base64 of a 32-byte seed): {exc}") from None


@dataclass(frozen=True)
class EventSigner:
    """One agent's signing key and its key id."""

    private_key: Ed25519PrivateKey
    key_id: str

    @classmethod
    def from_private_key(cls, key: Ed25519PrivateKey) -> EventSigner:
        return cls(key, key_id_of(key.public_key()))

    @classmethod
    def from_private_b64(cls, text: str) -> EventSigner:
        return cls.from_private_key(load_private_key(text))

    @classmethod
    def generate(cls) -> EventSigner:
        return cls.from_private_key(Ed25519PrivateKey.generate())

    @property
    def private_b64(self) -> str:
        return base64.b64encode(self.private_key.private_bytes_raw()).decode()

    @property
    def public_key_b64(self) -> str:
        return public_key_b64(self.private_key.public_key())

    def sign(self, event: SuspectChange) -> SuspectChange:
        """The event with its signature (any earlier one replaced)."""
        return self.sign_to_json(event)[0]

    def sign_to_json(
        self, event: SuspectChange, *, seq: int | None = None
    ) -> tuple[SuspectChange, bytes]:
        """The signed event and its message bytes, from one serialisation; ``seq``: set it
        first (the spool numbers an event as it stores it)."""
        body = event_body(event)
        body.pop(SIGNATURE_MEMBER, None)
        update: dict[str, Any] = {}
        if seq is not None:
            body["seq"] = update["seq"] = seq
        value = base64.b64encode(self.private_key.sign(event_json(body))).decode()
        signature = EventSignature(key_id=self.key_id, alg=ALG, value=value)
        body[SIGNATURE_MEMBER] = {"alg": ALG, "key_id": self.key_id, "value": value}
        update["signature"] = signature
        return event.model_copy(update=update), event_json(body)


    def sign_batch(
        self, events: Sequence[SuspectChange], *, first_seq: int | None = None
    ) -> list[tuple[SuspectChange, bytes]]:
        """Each event (numbered from ``first_seq`` when given) with its signed message bytes:
        one signature per `MAX_TREE_SIZE` events (see the module docstring).

        The returned events carry their ``seq`` but not the signature: the bytes do (the
        spool stores the bytes; building a signature model per event would cost more than the
        Merkle proof). `SuspectChange.model_validate_json` of the bytes gives the signed event.
        """
        messages = self.batch_messages(events, first_seq=first_seq)
        numbered = events if first_seq is None else [
            event.model_copy(update={"seq": first_seq + i}) for i, event in enumerate(events)
        ]
        return list(zip(numbered, messages, strict=True))

    def batch_messages(
        self, events: Sequence[SuspectChange], *, first_seq: int | None = None
    ) -> list[bytes]:
        """`sign_batch`'s message bytes alone: no numbered copy of each event is made (the
        spool stores the bytes, and the agent does not read the events back)."""
        messages: list[bytes] = []
        for start in range(0, len(events), MAX_TREE_SIZE):
            seq = None if first_seq is None else first_seq + start
            messages.extend(self._sign_tree(events[start : start + MAX_TREE_SIZE], seq))
        return messages

    def _sign_tree(self, events: Sequence[SuspectChange], first_seq: int | None) -> list[bytes]:
        halves = [
            _halves(event, None if first_seq is None else first_seq + i)
            for i, event in enumerate(events)
        ]
        if len(events) == 1:  # plain ed25519: what every classifier reads
            ((head, tail),) = halves
            value = _b64(self.private_key.sign(head + b"," + tail))
            member = canonical_json({"alg": ALG, "key_id": self.key_id, "value": value})
            return [head + b',"signature":' + member + b"," + tail]
        # Each proof's hashes joined by '","', in the quotes `opening` and `closing` write.
        root, paths = joined_audit_paths([_leaf(head, tail) for head, tail in halves],
                                         _plain_b64, b'","')
        size = len(events)
        value = _b64(self.private_key.sign(root_message(root, size)))
        # The member, canonical JSON (sorted keys) written around its two parts that differ
        # per event (the leaf index and the path); a test holds it to `canonical_json`.
        opening = (b',"signature":{"alg":"' + ALG_MERKLE.encode() + b'","key_id":'
                   + canonical_json(self.key_id) + b',"proof":{"leaf_index":')
        closing = (b'"],"tree_size":' + str(size).encode() + b'},"value":"' + value.encode()
                   + b'"},')
        return [
            b"".join((head, opening, index, path, closing, tail))
            for index, (head, tail), path in zip(_LEAF_INDEX, halves, paths, strict=False)
        ]


#: Each leaf index as the proof writes it, up to the path's first hash (a tree of two or more
#: leaves gives every leaf one at least: the quote is the first hash's).
_LEAF_INDEX = [b'%d,"path":["' % i for i in range(MAX_TREE_SIZE)]


def _leaf(head: bytes, tail: bytes) -> bytes:
    """`leaf_hash` of ``head + b"," + tail`` (the signed bytes), without joining them."""
    h = _LEAF.copy()
    h.update(head)
    h.update(b",")
    h.update(tail)
    return h.digest()


_LEAF = hashlib.sha256(LEAF_PREFIX)


#: Base64 of a hash, no newline: `binascii.b2a_base64` bound to its keyword in C.
_plain_b64 = functools.partial(binascii.b2a_base64, newline=False)


def _halves(event: SuspectChange, seq: int | None = None) -> tuple[bytes, bytes]:
    """The event's canonical JSON without ``signature`` (with ``seq`` in place of its own,
    when given), cut where ``signature`` would go:
    ``head + b"," + tail`` is what is signed, and ``head + b',"signature":' + member + b"," +
    tail`` the message (canonical JSON sorts the keys, so the member's place is fixed:
    ``seq`` before it, ``site`` after it, both in every event).

    One serialisation: the member is written as `_MARK`, a NUL byte, which canonical JSON
    never holds raw (it escapes it in a string), so the first NUL is the cut."""
    members = event_members(event)
    if seq is not None:
        members["seq"] = seq
    members[SIGNATURE_MEMBER] = _MARK
    text = event_json(members)
    cut = text.index(0)
    return text[: cut - _MEMBER_KEY_BYTES], text[cut + 2 :]


_MARK = orjson.Fragment(b"\x00")
#: ``,"signature":`` before the mark (the comma after it is the tail's).
_MEMBER_KEY_BYTES = len(b',"signature":')


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class VerifiedRoots:
    """The batch signatures already found valid (key, tree size, root, signature): a bounded
    LRU, so the events of one batch cost one Ed25519 check between them. Only successes are
    kept; a forged root is checked (and refused) every time. (The classifier keeps a second
    one of whole messages: key, the message's SHA-256, signature.)"""

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self._seen: OrderedDict[tuple[str, bytes, bytes], None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, entry: tuple[str, bytes, bytes]) -> bool:
        if entry in self._seen:
            self._seen.move_to_end(entry)
            return True
        return False

    def add(self, entry: tuple[str, bytes, bytes]) -> None:
        self._seen[entry] = None
        if len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)


def sign_event(event: SuspectChange, signer: EventSigner) -> SuspectChange:
    """``event`` signed by ``signer`` (see the module docstring for what is signed)."""
    return signer.sign(event)


def signed_bytes(message: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: the object's canonical JSON without ``signature``."""
    return canonical_json({k: v for k, v in message.items() if k != SIGNATURE_MEMBER})


def verify_event(
    message: bytes | str | Mapping[str, Any], public_keys: Mapping[str, PublicKey],
    *, cache: VerifiedRoots | None = None, event: SuspectChange | None = None,
) -> EventCheck:
    """Check an event's signature against ``public_keys`` (key id → key). Never raises.

    ``message`` is the raw message value (preferred: the bytes as received) or the object
    parsed from it with orjson. Keys are `Ed25519PublicKey` objects or base64 text. ``cache``:
    batch signatures already verified (`VerifiedRoots`), for a reader of many events.
    ``event``: the event already validated from ``message`` (the classifier's), whose
    signature member is then taken as validated there rather than validated again; what is
    checked is still ``message``'s bytes.
    """
    parsed = _as_object(message)
    if isinstance(parsed, EventCheck):
        return parsed
    member = parsed.get(SIGNATURE_MEMBER)
    if member is None:
        return EventCheck(SignatureStatus.MISSING, "the event carries no signature")
    try:
        signature = (
            event.signature if event is not None and type(event.signature) is EventSignature
            else EventSignature.model_validate(member)
        )
        value = base64.b64decode(signature.value, validate=True)
    except (ValueError, binascii.Error) as exc:
        return EventCheck(SignatureStatus.MALFORMED, f"the signature member is malformed: {exc}")
    if base64.b64encode(value).decode() != signature.value:
        # base64 leaves a few bits of the last characters unused: one signature, many texts.
        # Only the agent's own spelling is accepted, so an event has one form on the wire.
        return EventCheck(SignatureStatus.MALFORMED, "the signature is not canonical base64")
    key_id = signature.key_id
    key = public_keys.get(key_id)
    if key is None:
        return EventCheck(
            SignatureStatus.UNKNOWN_KEY, f"signed by key {key_id!r}, which is not trusted", key_id
        )
    if signature.proof is not None:
        return _check_merkle(parsed, value, signature.proof, key, key_id, cache)
    return _check(parsed, value, key, key_id)


def _as_object(message: bytes | str | Mapping[str, Any]) -> dict[str, Any] | EventCheck:
    if isinstance(message, Mapping):
        return dict(message)
    if not isinstance(message, bytes | bytearray | memoryview | str):
        return EventCheck(SignatureStatus.MALFORMED, f"not a message: {type(message).__name__}")
    try:
        parsed = orjson.loads(message)
    except orjson.JSONDecodeError as exc:
        return EventCheck(SignatureStatus.MALFORMED, f"not JSON: {exc}")
    if not isinstance(parsed, dict):
        return EventCheck(SignatureStatus.MALFORMED, "not a JSON object")
    return parsed


def _check(parsed: dict[str, Any], value: bytes, key: PublicKey, key_id: str) -> EventCheck:
    try:
        signed = signed_bytes(parsed)
    except (TypeError, ValueError) as exc:  # bytes orjson cannot write again (a huge integer)
        return EventCheck(SignatureStatus.MALFORMED, f"the event cannot be re-encoded: {exc}")
    return _verify(key, key_id, value, signed, "the event (changed or forged)")


def _check_merkle(
    parsed: dict[str, Any], value: bytes, proof: MerkleProof, key: PublicKey, key_id: str,
    cache: VerifiedRoots | None,
) -> EventCheck:
    path = []
    for text in proof.path:  # 44 characters each (the model's pattern): 32 bytes
        if text[42] not in _ENDS_32_BYTES:
            return EventCheck(SignatureStatus.MALFORMED, "a proof hash is not canonical base64")
        path.append(binascii.a2b_base64(text))
    try:
        signed = signed_bytes(parsed)
    except (TypeError, ValueError) as exc:
        return EventCheck(SignatureStatus.MALFORMED, f"the event cannot be re-encoded: {exc}")
    root = root_from_proof(leaf_hash(signed), proof.leaf_index, proof.tree_size, path)
    if root is None:
        return EventCheck(
            SignatureStatus.BAD_SIGNATURE,
            f"the proof does not fit leaf {proof.leaf_index} of a tree of {proof.tree_size} "
            "(changed or forged)",
            key_id,
        )
    message = root_message(root, proof.tree_size)
    entry = (key if isinstance(key, str) else public_key_b64(key), message, value)
    if cache is not None and cache.seen(entry):
        return EventCheck(SignatureStatus.VALID, f"signed by key {key_id!r} (batch)", key_id)
    check = _verify(key, key_id, value, message, "the event's batch (changed or forged)")
    if check.ok and cache is not None:
        cache.add(entry)
    return check


#: The characters that may end 32 bytes in base64 (before the ``=``): the last one carries 2
#: spare bits, which the agent's spelling leaves 0 (a look-up, not an encoding per hash).
_ENDS_32_BYTES = frozenset(
    c for i, c in enumerate(string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/")
    if i % 4 == 0
)


def _verify(key: PublicKey, key_id: str, value: bytes, signed: bytes, what: str) -> EventCheck:
    try:
        public = load_public_key(key) if isinstance(key, str) else key
    except ValueError as exc:
        return EventCheck(
            SignatureStatus.UNKNOWN_KEY, f"the trusted key {key_id!r} is unusable: {exc}", key_id
        )
    try:
        public.verify(value, signed)
    except InvalidSignature:
        return EventCheck(
            SignatureStatus.BAD_SIGNATURE,
            f"the signature of key {key_id!r} does not match {what}",
            key_id,
        )
    return EventCheck(SignatureStatus.VALID, f"signed by key {key_id!r}", key_id)
