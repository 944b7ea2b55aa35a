"""Ed25519 signatures over approved change records.

The signed bytes are the record's canonical JSON without ``signature``: the record as validated
(defaults filled in, ``None`` fields left out), keys sorted, no whitespace, UTF-8, datetimes as
ISO 8601 UTC with ``Z``. A signer in another language reproduces it with its own JSON library.
Keys are base64 of the raw 32 bytes (private: the seed; public: the point).

Example::

    >>> private, public = generate_keypair()
    >>> signed = sign_approval(record, private)
    >>> check_signature(signed, [public])
    <SignatureCheck.VALID: 'valid'>
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agent.approvals.errors import SigningError
from agent.approvals.model import ApprovedChange, decode_public_key


class SignatureCheck(StrEnum):
    VALID = "valid"
    UNSIGNED = "unsigned"
    INVALID = "invalid"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def canonical_json(data: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8, datetimes as ``...Z``: the same bytes on every host."""
    return json.dumps(
        _jsonable(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def signed_bytes(record: ApprovedChange) -> bytes:
    """What the signature covers: every field but ``signature``."""
    return canonical_json(record.model_dump(exclude={"signature"}, exclude_none=True))


def _private_key(private_b64: str) -> Ed25519PrivateKey:
    try:
        seed = base64.b64decode(private_b64.strip(), validate=True)
        return Ed25519PrivateKey.from_private_bytes(seed)
    except (binascii.Error, ValueError) as exc:
        raise SigningError(
            f"not an Ed25519 private key (base64 of 32 raw bytes): {exc} "
            "(fix: make one with `otwatch-agent approvals keygen`)"
        ) from exc


def generate_keypair() -> tuple[str, str]:
    """A new (private, public) pair, each base64 of the 32 raw bytes."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes_raw()
    return base64.b64encode(seed).decode(), public_key_of(base64.b64encode(seed).decode())


def public_key_of(private_b64: str) -> str:
    """The base64 public key that belongs to a base64 private key."""
    public = _private_key(private_b64).public_key()
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def sign_approval(record: ApprovedChange, private_b64: str) -> ApprovedChange:
    """The record with ``signature`` set (any earlier signature is replaced)."""
    signature = _private_key(private_b64).sign(signed_bytes(record))
    return record.model_copy(update={"signature": base64.b64encode(signature).decode()})


def _public_keys(trusted: Iterable[str]) -> list[Ed25519PublicKey]:
    keys = []
    for text in trusted:
        try:
            keys.append(Ed25519PublicKey.from_public_bytes(decode_public_key(text)))
        except ValueError as exc:
            raise SigningError(f"trusted key {text[:12]}...: {exc}") from exc
    return keys


def check_signature(record: ApprovedChange, trusted: Iterable[str]) -> SignatureCheck:
    """VALID if a trusted key verifies it; forged, tampered or unknown-key records are INVALID."""
    if not record.signature:
        return SignatureCheck.UNSIGNED
    try:
        signature = base64.b64decode(record.signature, validate=True)
    except (binascii.Error, ValueError):
        return SignatureCheck.INVALID
    message = signed_bytes(record)
    for key in _public_keys(trusted):
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        return SignatureCheck.VALID
    return SignatureCheck.INVALID
