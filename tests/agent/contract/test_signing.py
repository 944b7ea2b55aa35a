"""Events signed by the agent's Ed25519 key: a verifier that parses the raw message, pops
``signature`` and re-dumps gets the signed bytes; every failure is named, none raises."""

from __future__ import annotations

import math

import orjson
import pytest

from agent.contract import EventSigner, SignatureStatus, key_id_of, verify_event
from agent.contract.signing import signed_bytes
from tests.support.events import make_event

SIGNER = EventSigner.generate()
KEYS = {SIGNER.key_id: SIGNER.public_key_b64}


def test_a_signed_event_verifies_from_its_raw_bytes_and_from_its_parsed_object() -> None:
    event = make_event(new_value=math.nan, context={"lot": "L-1"})
    signed, raw = SIGNER.sign_to_json(event)
    assert signed.to_json() == raw
    assert signed.signature is not None and signed.signature.key_id == SIGNER.key_id
    assert verify_event(raw, KEYS).status is SignatureStatus.VALID
    assert verify_event(orjson.loads(raw), KEYS).ok
    assert verify_event(raw.decode(), KEYS).ok
    # what the signature covers: the raw object, less signature, re-dumped
    body = orjson.loads(raw)
    body.pop("signature")
    assert signed_bytes(orjson.loads(raw)) == orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def test_key_id_is_the_hash_of_the_public_key() -> None:
    assert key_id_of(SIGNER.public_key_b64) == SIGNER.key_id
    assert len(SIGNER.key_id) == 16
    again = EventSigner.from_private_b64(SIGNER.private_b64)
    assert again.key_id == SIGNER.key_id


def _signed_raw() -> bytes:
    return SIGNER.sign(make_event()).to_json()


def _tamper(field: str, value: object) -> bytes:
    body = orjson.loads(_signed_raw())
    body[field] = value
    return orjson.dumps(body)


def _with_signature(member: object) -> bytes:
    body = orjson.loads(_signed_raw())
    body["signature"] = member
    return orjson.dumps(body)


@pytest.mark.parametrize(
    ("message", "status"),
    [
        pytest.param(make_event().to_json(), SignatureStatus.MISSING, id="unsigned"),
        pytest.param(_tamper("new_value", 231.0), SignatureStatus.BAD_SIGNATURE, id="tampered"),
        pytest.param(_tamper("verdict", "authorized"), SignatureStatus.BAD_SIGNATURE, id="verdict"),
        pytest.param(EventSigner.generate().sign(make_event()).to_json(),
                     SignatureStatus.UNKNOWN_KEY, id="other-agent"),
        pytest.param(_with_signature({"key_id": SIGNER.key_id, "alg": "ed25519",
                                      "value": "AAAA"}),
                     SignatureStatus.BAD_SIGNATURE, id="short-signature"),
        pytest.param(_with_signature({"key_id": SIGNER.key_id, "alg": "rsa", "value": "AAAA"}),
                     SignatureStatus.MALFORMED, id="alg"),
        pytest.param(_with_signature({"key_id": SIGNER.key_id, "alg": "ed25519",
                                      "value": "not base64!"}),
                     SignatureStatus.MALFORMED, id="not-base64"),
        pytest.param(_with_signature("yes"), SignatureStatus.MALFORMED, id="not-an-object"),
        pytest.param(b"{not json", SignatureStatus.MALFORMED, id="not-json"),
        pytest.param(b"[1,2]", SignatureStatus.MALFORMED, id="array"),
        pytest.param(b"", SignatureStatus.MALFORMED, id="empty"),
        pytest.param(12, SignatureStatus.MALFORMED, id="not-a-message"),
        pytest.param(_signed_raw().replace(b'"seq":1', b'"seq":1180591620717411303424'),
                     SignatureStatus.BAD_SIGNATURE, id="huge-int"),
    ],
)
def test_every_failure_is_named(message: object, status: SignatureStatus) -> None:
    check = verify_event(message, KEYS)  # type: ignore[arg-type]
    assert check.status is status, check.reason
    assert not check.ok and check.reason


def test_an_unusable_trusted_key_is_a_failure_not_a_crash() -> None:
    check = verify_event(_signed_raw(), {SIGNER.key_id: "not a key"})
    assert check.status is SignatureStatus.UNKNOWN_KEY
    assert "unusable" in check.reason


def test_a_signature_spelt_another_way_in_base64_is_malformed() -> None:
    """64 bytes take 86 base64 characters and two pads: the last character has 4 spare bits."""
    body = orjson.loads(_signed_raw())
    value = body["signature"]["value"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    other = alphabet[alphabet.index(value[85]) ^ 1]
    body["signature"]["value"] = value[:85] + other + value[86:]
    check = verify_event(body, KEYS)
    assert check.status is SignatureStatus.MALFORMED and "canonical" in check.reason
