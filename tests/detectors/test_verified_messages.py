"""`TrustedAgents.check` remembers the messages it found valid (by SHA-256, with the key that
verified them), so the integrity reader's second check of a message the group consumer
checked costs a hash and a look-up, not the signature's work again.

What the memo must never do: take a message it did not verify (a changed byte, a forged
signature), keep a failure, outlive the trust in its key (removed, or another key under the
same id), or grow without bound. `verify_event` is wrapped (the real one, counted) to see when
the signature's work is done. Pure: no broker.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from agent.contract import EventSigner, SignatureStatus, SuspectChange
from detectors import signatures
from detectors.messages import parse_event
from detectors.signatures import TrustedAgents
from tests.support.events import make_event

AGENT = EventSigner.generate()
OTHER = EventSigner.generate()


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """The messages `verify_event` is asked about, in order (the real function answers)."""
    asked: list[bytes] = []
    real = signatures.verify_event

    def counted(message: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(message)
        return real(message, *args, **kwargs)

    monkeypatch.setattr(signatures, "verify_event", counted)
    yield asked


def _trusted(*signers: EventSigner) -> TrustedAgents:
    return TrustedAgents({s.key_id: s.public_key_b64 for s in signers}, require_signed=True)


def _message(signer: EventSigner = AGENT, **overrides: Any) -> tuple[bytes, SuspectChange]:
    raw = signer.sign_to_json(make_event(**overrides))[1]
    return raw, parse_event(raw)


def _batch(n: int) -> list[tuple[bytes, SuspectChange]]:
    """``n`` events signed in one Merkle batch, as an agent signs a spool append."""
    raws = AGENT.batch_messages([make_event() for _ in range(n)])
    return [(raw, parse_event(raw)) for raw in raws]


@pytest.mark.parametrize("batched", [False, True], ids=["ed25519", "ed25519-merkle"])
def test_a_message_verified_once_is_taken_again_without_the_signature_work(
    verified: list[bytes], batched: bool
) -> None:
    messages = _batch(3) if batched else [_message() for _ in range(3)]
    trusted = _trusted(AGENT)
    for raw, event in messages:  # the group consumer
        assert trusted.check(raw, event) is None
    for raw, _ in messages:  # the integrity reader, with its own copy of the bytes
        assert trusted.check(bytes(bytearray(raw)), parse_event(raw)) is None
    assert verified == [raw for raw, _ in messages]
    assert len(trusted.verified_messages) == 3


def test_a_changed_byte_is_checked_and_refused_whatever_was_verified_before(
    verified: list[bytes],
) -> None:
    raw, event = _message()
    trusted = _trusted(AGENT)
    assert trusted.check(raw, event) is None
    changed = raw.replace(b'"new_value":230.0', b'"new_value":231.0')
    assert changed != raw
    check = trusted.check(changed, parse_event(changed))  # the same signature member
    assert check is not None and check.status is SignatureStatus.BAD_SIGNATURE
    assert verified == [raw, changed]


def test_a_failure_is_not_remembered(verified: list[bytes]) -> None:
    body = orjson.loads(_message()[0])
    body["verdict"] = "authorized"  # a forger's edit
    forged = orjson.dumps(body)
    trusted = _trusted(AGENT)
    for _ in range(2):
        check = trusted.check(forged, parse_event(forged))
        assert check is not None and check.status is SignatureStatus.BAD_SIGNATURE
    assert verified == [forged, forged]
    assert len(trusted.verified_messages) == 0


def test_a_key_no_longer_trusted_is_not_trusted_through_the_memo() -> None:
    raw, event = _message()
    trusted = _trusted(AGENT, OTHER)
    assert trusted.check(raw, event) is None
    del trusted.keys[AGENT.key_id]
    check = trusted.check(raw, event)
    assert check is not None and check.status is SignatureStatus.UNKNOWN_KEY
    trusted.keys[AGENT.key_id] = OTHER.public_key_b64  # another key under the same id
    check = trusted.check(raw, event)
    assert check is not None and check.status is SignatureStatus.BAD_SIGNATURE
    trusted.keys[AGENT.key_id] = AGENT.public_key_b64  # trusted again: verified again
    assert trusted.check(raw, event) is None


def test_an_unsigned_message_is_never_remembered(verified: list[bytes]) -> None:
    raw = make_event().to_json()
    trusted = _trusted(AGENT)
    for _ in range(2):
        check = trusted.check(raw, parse_event(raw))
        assert check is not None and check.status is SignatureStatus.MISSING
    assert len(verified) == 2 and len(trusted.verified_messages) == 0


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch, verified: list[bytes]) -> None:
    monkeypatch.setattr(signatures, "VERIFIED_MESSAGES", 4)
    trusted = _trusted(AGENT)
    messages = [_message() for _ in range(6)]
    for raw, event in messages:
        assert trusted.check(raw, event) is None
    assert len(trusted.verified_messages) == 4
    verified.clear()
    for raw, event in messages:  # the two oldest were forgotten: verified again
        assert trusted.check(raw, event) is None
    assert verified[:2] == [messages[0][0], messages[1][0]]
