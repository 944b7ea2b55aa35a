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

**Checking.** `verify_event` never raises: it says `SignatureStatus.VALID`, or why not:
``missing`` (no signature: a ``/1`` event, or a forged one), ``unknown_key`` (a key id the
reader does not trust), ``bad_signature`` (the bytes were changed, or signed by another key),
``malformed`` (not a JSON object, or a signature member of the wrong shape).

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
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agent.contract.events import EventSignature, SuspectChange
from agent.contract.values import canonical_json

ALG = "ed25519"
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
        body = event.json_object()
        body.pop(SIGNATURE_MEMBER, None)
        update: dict[str, Any] = {}
        if seq is not None:
            body["seq"] = update["seq"] = seq
        value = base64.b64encode(self.private_key.sign(canonical_json(body))).decode()
        signature = EventSignature(key_id=self.key_id, alg=ALG, value=value)
        body[SIGNATURE_MEMBER] = {"alg": ALG, "key_id": self.key_id, "value": value}
        update["signature"] = signature
        return event.model_copy(update=update), canonical_json(body)


def sign_event(event: SuspectChange, signer: EventSigner) -> SuspectChange:
    """``event`` signed by ``signer`` (see the module docstring for what is signed)."""
    return signer.sign(event)


def signed_bytes(message: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: the object's canonical JSON without ``signature``."""
    return canonical_json({k: v for k, v in message.items() if k != SIGNATURE_MEMBER})


def verify_event(
    message: bytes | str | Mapping[str, Any], public_keys: Mapping[str, PublicKey]
) -> EventCheck:
    """Check an event's signature against ``public_keys`` (key id → key). Never raises.

    ``message`` is the raw message value (preferred: the bytes as received) or the object
    parsed from it with orjson. Keys are `Ed25519PublicKey` objects or base64 text.
    """
    parsed = _as_object(message)
    if isinstance(parsed, EventCheck):
        return parsed
    member = parsed.get(SIGNATURE_MEMBER)
    if member is None:
        return EventCheck(SignatureStatus.MISSING, "the event carries no signature")
    try:
        signature = EventSignature.model_validate(member)
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
        public = load_public_key(key) if isinstance(key, str) else key
    except ValueError as exc:
        return EventCheck(
            SignatureStatus.UNKNOWN_KEY, f"the trusted key {key_id!r} is unusable: {exc}", key_id
        )
    try:
        public.verify(value, signed_bytes(parsed))
    except InvalidSignature:
        return EventCheck(
            SignatureStatus.BAD_SIGNATURE,
            f"the signature of key {key_id!r} does not match the event (changed or forged)",
            key_id,
        )
    except (TypeError, ValueError) as exc:  # bytes orjson cannot write again (a huge integer)
        return EventCheck(SignatureStatus.MALFORMED, f"the event cannot be re-encoded: {exc}")
    return EventCheck(SignatureStatus.VALID, f"signed by key {key_id!r}", key_id)
