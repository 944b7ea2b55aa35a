"""`verify_event` with the event already validated from the message (``event=``, what the
classifier passes) decides exactly as it does from the raw message alone: the event's
signature member is taken as validated, the bytes checked are the message's. The raw path
(no event) still never raises and names a malformed member."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.contract import EventSigner, SignatureStatus, SuspectChange, verify_event
from agent.contract.signing import VerifiedRoots
from tests.support.events import make_event

SIGNER = EventSigner.generate()
STRANGER = EventSigner.generate()
KEYS = {SIGNER.key_id: SIGNER.public_key_b64}


def _edited(raw: bytes, path: tuple[str | int, ...], value: Any) -> bytes:
    body: Any = orjson.loads(raw)
    node = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return orjson.dumps(body)


def _messages() -> list[bytes]:
    plain = SIGNER.sign_to_json(make_event(context={"lot": "L-1"}))[1]
    batch = SIGNER.batch_messages([make_event(), make_event(), make_event()])
    return [
        plain, *batch, STRANGER.sign_to_json(make_event())[1], make_event().to_json(),
        _edited(plain, ("new_value",), 231.0),
        _edited(batch[1], ("verdict",), "authorized"),
        _edited(batch[1], ("signature", "proof", "leaf_index"), 2),
        _edited(batch[1], ("signature", "proof", "tree_size"), 4),
        _edited(plain, ("signature", "value"), "AAAA"),
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=st.sampled_from(_messages()), cached=st.booleans())
def test_the_validated_event_changes_no_judgement(message: bytes, cached: bool) -> None:
    event = SuspectChange.model_validate_json(message)
    alone = verify_event(message, KEYS, cache=VerifiedRoots() if cached else None)
    given_event = verify_event(message, KEYS, cache=VerifiedRoots() if cached else None,
                               event=event)
    assert given_event == alone


def test_the_messages_cover_every_outcome() -> None:
    seen = {verify_event(m, KEYS).status for m in _messages()}
    assert seen == {SignatureStatus.VALID, SignatureStatus.UNKNOWN_KEY,
                    SignatureStatus.MISSING, SignatureStatus.BAD_SIGNATURE}


def test_a_signature_that_is_not_the_messages_does_not_verify_it() -> None:
    """The bytes checked are the message's: another event's valid signature, passed as the
    validated one, does not make a changed message verify."""
    raw = SIGNER.sign_to_json(make_event())[1]
    other = SuspectChange.model_validate_json(SIGNER.sign_to_json(make_event())[1])
    check = verify_event(raw, KEYS, event=other)
    assert check.status is SignatureStatus.BAD_SIGNATURE


@pytest.mark.parametrize("message", [b"{nope", b"[1]", b"", b'{"signature": 5}', b"\xff"])
def test_the_raw_path_never_raises(message: bytes) -> None:
    check = verify_event(message, KEYS)
    assert check.status is SignatureStatus.MALFORMED and check.reason


def test_a_proof_hash_is_canonical_exactly_when_it_encodes_back_to_itself() -> None:
    """Every character at the end of a proof hash: refused as not canonical exactly when
    decoding and encoding the hash again gives another text (its 2 spare bits set)."""
    raw = SIGNER.batch_messages([make_event(), make_event()])[0]
    body: Any = orjson.loads(raw)
    first = body["signature"]["proof"]["path"][0]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    for last in alphabet:
        text = first[:42] + last + "="
        canonical = base64.b64encode(base64.b64decode(text)).decode() == text
        check = verify_event(_edited(raw, ("signature", "proof", "path", 0), text), KEYS)
        assert (check.reason == "a proof hash is not canonical base64") is (not canonical), last
        assert check.ok is (text == first)
