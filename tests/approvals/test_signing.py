"""The canonical JSON a signature covers: stable bytes that another language can reproduce."""

from __future__ import annotations

import base64

import pytest

from agent.approvals import SigningError
from agent.approvals.signing import (
    SignatureCheck,
    check_signature,
    sign_approval,
    signed_bytes,
)
from tests.approvals.factory import KEY_PRIVATE, KEY_PUBLIC, record


def test_canonical_json_is_sorted_compact_utc() -> None:
    rec = record(valid_from="2026-11-23T09:00:00+01:00", signature="ignored")
    assert signed_bytes(rec) == (
        b'{"approved_at":"2026-11-23T07:55:00Z","approved_by":"j.doe",'
        b'"change_control_ref":"CC-1234","controller":"press-01","expected":{"exact":185.0},'
        b'"id":"CR-1","reason":"Raise zone temperature for the new resin lot",'
        b'"single_use":false,"status":"active","tag":"temperature_sp",'
        b'"valid_from":"2026-11-23T08:00:00Z","valid_until":"2026-11-23T20:00:00Z"}'
    )


def test_same_record_in_another_offset_keeps_its_signature() -> None:
    signed = sign_approval(record(), KEY_PRIVATE)
    moved = record(valid_from="2026-11-23T09:00:00+01:00", signature=signed.signature)
    assert check_signature(moved, [KEY_PUBLIC]) is SignatureCheck.VALID


def test_signature_is_64_bytes_base64() -> None:
    signed = sign_approval(record(), KEY_PRIVATE)
    assert signed.signature is not None
    assert len(base64.b64decode(signed.signature)) == 64


def test_bad_private_key_is_refused_with_the_fix() -> None:
    with pytest.raises(SigningError, match="keygen"):
        sign_approval(record(), "AAAA")
