"""Which events the classifier believes: the agents' Ed25519 signatures, checked on every event.

Anyone who can write to the suspect topic could otherwise open master records (or, on the
authorized topic, fill a gap in an agent's ``seq``). Each agent signs its events with its own
key (`agent.contract.signing`); the classifier trusts the public keys it is given
(``classifier.agent_keys``, ``classifier.agent_keys_dir``) and `TrustedAgents.check` judges
each event by the bytes it arrived as:

- a valid signature by a trusted key: the event is what it says (an agent signs each batch of
  events once, over a Merkle root, and each event carries its proof: the root's signature is
  checked once per batch, remembered in a bounded LRU, `VerifiedRoots`; a message found
  valid is remembered by its SHA-256, so the integrity reader's second check of a message of
  the suspect topic is a hash and a look-up; its parse is shared too, `ParsedEvents`);
- no signature: accepted only while ``classifier.require_signed_events`` is false (agents of
  schema ``otwatch.change/1`` sign nothing, and sites upgrade one at a time);
- an unknown key, a signature that does not match, or a malformed one: never accepted.

An event that is not accepted becomes a `forged_finding`: a data-integrity and security finding
(integrity kind ``forged_event``, rule DI-4 in the criteria) about the agent it claims to come
from, with the message as received kept as its evidence, and never the record it claims.

Example::

    >>> trusted = TrustedAgents(load_agent_keys(config.classifier), require_signed=True)
    >>> check = trusted.check(msg.value, event)      # None: take the event as it is
    >>> finding = forged_finding(event, msg.value, check, now) if check else None
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import yaml

from agent.contract import (
    ChangeKind,
    ControllerRef,
    EventCheck,
    SignatureStatus,
    SuspectChange,
    TagKind,
    TagRef,
    Verdict,
    VerifiedRoots,
    key_id_of,
    verify_event,
)
from detectors.config import ClassifierSection, key_problem
from detectors.correlate import EventContext, IntegrityKind
from detectors.errors import ClassifierConfigError
from detectors.integrity import Finding
from detectors.parsed_events import ParsedEvents

log = logging.getLogger(__name__)

#: How much of each claimed name a finding repeats (the claims are the sender's, unbounded).
CLAIM_CHARS = 200
#: How many verified batch signatures `TrustedAgents` remembers.
VERIFIED_ROOTS = 4096
#: How many verified messages `TrustedAgents` remembers (by their SHA-256): more than the
#: integrity reader and the group consumer are usually apart, in messages.
VERIFIED_MESSAGES = 16_384


class TrustedAgents:
    """The agent keys this classifier trusts, and whether an event must be signed."""

    def __init__(self, keys: Mapping[str, str], *, require_signed: bool) -> None:
        self.keys = dict(keys)
        self.require_signed = require_signed
        #: Batch signatures (``ed25519-merkle``) already verified: one Ed25519 check per
        #: batch, not per event; bounded (a batch's events arrive close together).
        self.verified_roots = VerifiedRoots(VERIFIED_ROOTS)
        #: Messages already verified (key, SHA-256 of the message, signature): the group
        #: consumer and the integrity reader each check every message of the suspect topic,
        #: and the second check is then a hash and a look-up. Only successes; keyed by the key
        #: itself, so a message whose key is no longer trusted (or another key under its id)
        #: is checked again.
        self.verified_messages = VerifiedRoots(VERIFIED_MESSAGES)
        #: The suspect topic's events as parsed by whichever reader saw them first, for the
        #: other (`judge_event`, the integrity reader): only the parse, never a verdict.
        self.parsed_events = ParsedEvents()

    def check(self, raw: bytes | None, event: SuspectChange) -> EventCheck | None:
        """None when ``event`` (parsed from ``raw``) may be taken as what it says; else why
        not. A signature that is there is always checked (once per message and trusted key:
        `verified_messages`); a missing one only matters when signatures are required."""
        signature = event.signature
        if signature is None and not self.require_signed:
            return None
        raw = raw or b""
        if signature is None or signature.key_id not in self.keys:  # (missing, unknown key)
            check = verify_event(raw, self.keys, cache=self.verified_roots, event=event)
            return None if check.ok else check
        seen = (self.keys[signature.key_id], hashlib.sha256(raw).digest(),
                signature.value.encode())
        if self.verified_messages.seen(seen):
            return None
        check = verify_event(raw, self.keys, cache=self.verified_roots, event=event)
        if not check.ok:
            return check
        self.verified_messages.add(seen)
        return None


def judge_event(
    value: bytes | None, *, max_bytes: int, trusted: TrustedAgents, now: datetime,
    keep: bool = False,
) -> SuspectChange | Finding:
    """What one message of the suspect topic is: the event it says (parsed and trusted), or the
    finding an untrusted one becomes. `BadMessage` (for the dead-letter topic) when it is not
    an event at all. Never raises anything else, whatever the bytes. The parse is shared with
    the integrity reader (`TrustedAgents.parsed_events`, kept for it when ``keep``); the trust
    is judged here, every time."""
    event = trusted.parsed_events.parse(value, max_bytes=max_bytes, keep=keep)
    check = trusted.check(value, event)
    return event if check is None else forged_finding(event, value, check, now)


def load_agent_keys(section: ClassifierSection) -> dict[str, str]:
    """The trusted keys (key id → base64 public key): ``agent_keys`` and every file in
    ``agent_keys_dir``. `ClassifierConfigError` names the key or file and the fix; with
    ``require_signed_events`` and no key at all, every event would be refused: also an error."""
    keys = dict(section.agent_keys)
    if section.agent_keys_dir is not None:
        keys.update(_keys_in(section.agent_keys_dir))
    if section.require_signed_events and not keys:
        raise ClassifierConfigError(
            "classifier.require_signed_events is true but no agent key is trusted, so every "
            "event would be a forged_event finding; fix: add each agent's key (`otwatch-agent "
            "keys show`) to classifier.agent_keys or classifier.agent_keys_dir, or set "
            "classifier.require_signed_events: false while no agent signs"
        )
    return keys


def _keys_in(folder: Path) -> dict[str, str]:
    where = f"classifier.agent_keys_dir: {folder}"
    if not folder.is_dir():
        raise ClassifierConfigError(
            f"{where} is not a folder; fix: create it and put each agent's key file in it"
        )
    keys: dict[str, str] = {}
    for path in sorted(p for p in folder.glob("*.pub") if p.is_file()):
        key_id, text = _key_file(path)
        keys[key_id] = text
    return keys


def _key_file(path: Path) -> tuple[str, str]:
    """(key id, public key) from a file: ``otwatch-agent keys show`` output, or a bare key."""
    where = f"classifier.agent_keys_dir: {path}"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ClassifierConfigError(f"{where}: cannot read ({exc}); fix: the file") from None
    named = data.get("key_id") if isinstance(data, dict) else None
    text = data.get("public_key") if isinstance(data, dict) else data
    if not isinstance(text, str) or (named is not None and not isinstance(named, str)):
        raise ClassifierConfigError(
            f"{where}: no public key; fix: save the output of `otwatch-agent keys show` there"
        )
    problem = key_problem(named, text)
    if problem is not None:
        raise ClassifierConfigError(f"{where}: {problem}")
    return key_id_of(text.strip()), text.strip()


def forged_finding(
    event: SuspectChange, raw: bytes | None, check: EventCheck, now: datetime
) -> Finding:
    """The finding an untrusted event becomes: about the agent it claims to come from (one
    incident per agent, as its other integrity findings), identified by the message's SHA-256
    (a redelivery is recognised, a different forgery is another piece of evidence)."""
    digest = hashlib.sha256(raw or b"").hexdigest()
    agent = event.agent_id[:CLAIM_CHARS]
    claim = (
        f"{event.controller.id[:CLAIM_CHARS]}/{event.tag.name[:CLAIM_CHARS]} "
        f"{event.change_kind.value} ({event.event_id[:CLAIM_CHARS]})"
    )
    finding = SuspectChange(
        event_id=f"forged:{digest}",
        seq=event.seq,
        agent_id=agent,
        site=event.site[:CLAIM_CHARS],
        line=event.line[:CLAIM_CHARS],
        controller=ControllerRef(
            id=f"agent:{agent}", protocol=event.controller.protocol, endpoint=f"agent:{agent}",
        ),
        tag=TagRef(name="event-signature", address=f"agent:{agent}/event-signature",
                   kind=TagKind.MODE),
        occurred_at=now,
        detected_at=now,
        change_kind=ChangeKind.MONITORING_GAP,
        verdict=Verdict.UNAPPROVED,
        verdict_reason=(
            f"an event claiming to be {claim} from agent {agent} is not trusted "
            f"({_status_text(check.status)}): {check.reason}; its message is kept as evidence"
        ),
    )
    context = EventContext(correlation_key=f"integrity:{agent}",
                           integrity=IntegrityKind.FORGED_EVENT)
    return Finding(finding, context)


def _status_text(status: SignatureStatus) -> str:
    return {
        SignatureStatus.MISSING: "unsigned",
        SignatureStatus.UNKNOWN_KEY: "signed by a key that is not trusted",
        SignatureStatus.BAD_SIGNATURE: "its signature does not match",
        SignatureStatus.MALFORMED: "its signature is malformed",
    }.get(status, status.value)
