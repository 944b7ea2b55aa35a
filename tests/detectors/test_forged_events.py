"""Forged events are findings, not records (issue 14, item 7): the agents' Ed25519 signatures.

Pure checks of what is trusted and what a forged event becomes, the trusted-key settings, and
the real classifier process against the real broker: an unsigned event, one signed by a key
nobody trusts and one changed after signing each open no record of the kind they claim, but
one data-integrity and security record about the agent they name, their messages kept as
evidence.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import yaml

from agent.contract import EventSigner, SignatureStatus, SuspectChange
from detectors.classification import ClassKind, Severity
from detectors.config import ClassifierSection, load_classifier_config
from detectors.correlate import IntegrityKind
from detectors.criteria import classify, load_criteria
from detectors.errors import ClassifierConfigError
from detectors.signatures import TrustedAgents, forged_finding, load_agent_keys
from simulators.broker import EmbeddedBroker
from tests.detectors.running import (
    AGENT,
    classifier,
    create_topics,
    produce,
    records,
    signed,
    status,
    wait_until,
    write_config,
)
from tests.support.events import make_event

CRITERIA = load_criteria(Path(__file__).parents[2] / "config" / "criteria.yaml")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
STRANGER = EventSigner.generate()


def tampered(event: SuspectChange) -> bytes:
    """The agent's signed message with its new value changed afterwards."""
    body = orjson.loads(signed(event)[1])
    body["new_value"] = 999.0
    return orjson.dumps(body)


def v1(**overrides: object) -> SuspectChange:
    return make_event(schema="otwatch.change/1", **overrides)


REQUIRED = TrustedAgents({AGENT.key_id: AGENT.public_key_b64}, require_signed=True)
UPGRADING = TrustedAgents({AGENT.key_id: AGENT.public_key_b64}, require_signed=False)


@pytest.mark.parametrize(
    ("trusted", "event", "raw", "status"),
    [
        pytest.param(REQUIRED, make_event(), None, None, id="signed"),
        pytest.param(REQUIRED, make_event(), b"unsigned", SignatureStatus.MISSING,
                     id="unsigned-required"),
        pytest.param(REQUIRED, v1(), b"unsigned", SignatureStatus.MISSING, id="v1-required"),
        pytest.param(UPGRADING, v1(), b"unsigned", None, id="v1-while-upgrading"),
        pytest.param(UPGRADING, make_event(), b"stranger", SignatureStatus.UNKNOWN_KEY,
                     id="unknown-key-while-upgrading"),
        pytest.param(UPGRADING, make_event(), b"tampered", SignatureStatus.BAD_SIGNATURE,
                     id="tampered-while-upgrading"),
    ],
)
def test_what_is_trusted(
    trusted: TrustedAgents, event: SuspectChange, raw: bytes | None,
    status: SignatureStatus | None,
) -> None:
    message = {
        None: signed(event)[1],
        b"unsigned": event.to_json(),
        b"stranger": signed(event, STRANGER)[1],
        b"tampered": tampered(event),
    }[raw]
    parsed = SuspectChange.model_validate_json(message)
    check = trusted.check(message, parsed)
    assert (check.status if check else None) == status


def test_batch_signed_events_are_trusted_with_one_signature_check_per_batch() -> None:
    trusted = TrustedAgents({AGENT.key_id: AGENT.public_key_b64}, require_signed=True)
    batch = AGENT.sign_batch([make_event(new_value=float(i)) for i in range(5)], first_seq=1)
    for _event, raw in batch:
        assert trusted.check(raw, SuspectChange.model_validate_json(raw)) is None
    assert len(trusted.verified_roots) == 1
    body = orjson.loads(batch[3][1])
    body["new_value"] = 999.0
    raw = orjson.dumps(body)
    check = trusted.check(raw, SuspectChange.model_validate_json(raw))
    assert check is not None and check.status is SignatureStatus.BAD_SIGNATURE


def test_a_forged_event_becomes_a_critical_joint_integrity_finding_about_its_agent() -> None:
    claimed = make_event(agent_id="edge-07", controller={"id": "press-01"})
    raw = claimed.to_json()
    check = REQUIRED.check(raw, claimed)
    assert check is not None
    finding = forged_finding(claimed, raw, check, NOW)
    event, context = finding.event, finding.context
    assert event.event_id.startswith("forged:") and len(event.event_id) == 7 + 64
    assert event.controller.id == "agent:edge-07" and event.detected_at == NOW
    assert "press-01/temperature_sp" in event.verdict_reason
    assert "unsigned" in event.verdict_reason
    assert context.integrity is IntegrityKind.FORGED_EVENT
    cls = classify(event, CRITERIA, context)
    assert (cls.kind, cls.severity) == (ClassKind.JOINT, Severity.CRITICAL)
    assert "DI-4" in cls.rules_fired and "JQS-1" not in cls.rules_fired
    assert cls.correlation_key == "integrity:edge-07"
    assert "T0856" in cls.attack_techniques
    again = forged_finding(claimed, raw, check, NOW)
    assert again.event.event_id == event.event_id  # a redelivery is the same finding


def test_agent_keys_are_checked_when_the_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "classifier.yaml"
    path.write_text(yaml.safe_dump({"classifier": {
        "agent_keys": {"0000000000000000": AGENT.public_key_b64}}}))
    with pytest.raises(ClassifierConfigError, match=(
            rf"classifier\.agent_keys: .*'0000000000000000': this public key's id is "
            rf"'{AGENT.key_id}'; fix: file it under '{AGENT.key_id}'")):
        load_classifier_config(path)
    path.write_text(yaml.safe_dump({"classifier": {"agent_keys": {"x": "not a key"}}}))
    with pytest.raises(ClassifierConfigError, match=r"agent_keys.*not an Ed25519 public key"):
        load_classifier_config(path)


def test_a_folder_of_agent_keys_takes_the_agents_own_output(tmp_path: Path) -> None:
    folder = tmp_path / "agent-keys"
    folder.mkdir()
    (folder / "edge-01.pub").write_text(  # as `otwatch-agent keys show` prints it
        f"agent edge-01: event signing key at /var/lib/otwatch/agent/event-signing.key\n"
        f"key_id: {AGENT.key_id}\npublic_key: {AGENT.public_key_b64}\n")
    (folder / "edge-02.pub").write_text(STRANGER.public_key_b64 + "\n")
    (folder / "README.md").write_text("one <agent>.pub per agent\n")
    (tmp_path / "classifier.yaml").write_text("classifier:\n  agent_keys_dir: agent-keys\n")
    config = load_classifier_config(tmp_path / "classifier.yaml")
    assert load_agent_keys(config.classifier) == {
        AGENT.key_id: AGENT.public_key_b64, STRANGER.key_id: STRANGER.public_key_b64}
    (folder / "edge-03.pub").write_text("key_id: abc\npublic_key: " +
                                        base64.b64encode(b"x" * 31).decode())
    with pytest.raises(ClassifierConfigError, match=r"agent_keys_dir: .*edge-03\.pub: not an "):
        load_agent_keys(config.classifier)


def test_signatures_required_with_no_key_is_refused_with_the_fix() -> None:
    with pytest.raises(ClassifierConfigError, match=r"require_signed_events is true but no "
                       r"agent key is trusted.*otwatch-agent keys show"):
        load_agent_keys(ClassifierSection())
    assert load_agent_keys(ClassifierSection(require_signed_events=False)) == {}


async def _classifier_setup(broker: EmbeddedBroker, tmp_path: Path) -> Path:
    """The topics, and a classifier config that reads them from the start."""
    await create_topics(broker.bootstrap)
    return write_config(tmp_path, broker.bootstrap, start_from="earliest", check_interval_s=0.5)


@pytest.mark.e2e
async def test_forged_events_open_one_integrity_record_and_no_record_of_what_they_claim(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    config = await _classifier_setup(broker, tmp_path)
    genuine = make_event(controller={"id": "oven-01"})
    unsigned = make_event(controller={"id": "press-01"}, line="line-2")
    stranger = make_event(controller={"id": "press-02"}, line="line-3")
    changed = make_event(controller={"id": "press-03"}, line="line-4")
    old_agent = v1(controller={"id": "press-04"}, line="line-5")
    authorized = make_event(controller={"id": "press-05"}, line="line-6", verdict="authorized",
                            seq=2)
    forged = [unsigned.to_json(), signed(stranger, STRANGER)[1], tampered(changed),
              old_agent.to_json()]
    await produce(broker.bootstrap, "otwatch.changes.suspect", [signed(genuine)] + [
        (b"plant-1/press", value) for value in forged])
    await produce(broker.bootstrap, "otwatch.changes.authorized",
                  [(b"plant-1/press-05", authorized.to_json())])
    db = tmp_path / "records.db"

    def integrity() -> list[str]:
        found = [r for r in records(db) if r.correlation_key == "integrity:edge-01"]
        return sorted(e.event_id for e in found[0].evidence) if found else []

    with classifier(config) as proc:
        ids = await asyncio.to_thread(wait_until, lambda: len(integrity()) == 5 and integrity(),
                                      60, "five forged events on one record", proc)
        assert status(config)["integrity_findings"] == 5
    assert all(i.startswith("forged:") for i in ids)
    opened = records(db)
    assert sorted(r.controller for r in opened) == ["agent:edge-01", "oven-01"]
    (record,) = [r for r in opened if r.controller == "agent:edge-01"]
    assert (record.classification, record.severity) == ("joint", "critical")
    assert "DI-4" in record.rules_fired
    kept = sorted(e.raw["controller"]["id"] for e in record.evidence)
    assert kept == ["press-01", "press-02", "press-03", "press-04", "press-05"]
    (tampered_kept,) = [e for e in record.evidence if e.raw["controller"]["id"] == "press-03"]
    assert tampered_kept.raw["new_value"] == 999.0  # the message as it arrived


@pytest.mark.e2e
async def test_batch_signed_events_open_their_records_and_a_tampered_one_is_a_finding(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    config = await _classifier_setup(broker, tmp_path)
    events = [make_event(controller={"id": f"press-1{i}"}, line=f"line-{i}") for i in range(3)]
    batch = AGENT.sign_batch(events, first_seq=1)
    body = orjson.loads(batch[2][1])
    body["new_value"] = 999.0
    messages = [(ev.kafka_key(), raw) for ev, raw in batch[:2]]
    messages.append((events[2].kafka_key(), orjson.dumps(body)))
    await produce(broker.bootstrap, "otwatch.changes.suspect", messages)
    db = tmp_path / "records.db"

    def opened() -> list[str]:
        return sorted(r.controller for r in records(db))

    with classifier(config) as proc:
        await asyncio.to_thread(wait_until, lambda: len(opened()) == 3, 60,
                                "two records and one integrity finding", proc)
    assert opened() == ["agent:edge-01", "press-10", "press-11"]
    (record,) = [r for r in records(db) if r.controller == "agent:edge-01"]
    assert "DI-4" in record.rules_fired
    (kept,) = record.evidence
    assert kept.raw["controller"]["id"] == "press-12" and kept.raw["new_value"] == 999.0
