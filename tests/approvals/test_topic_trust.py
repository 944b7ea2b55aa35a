"""Weak defaults closed (issue 14, item 7): approvals from the topic must be signed unless the
site says otherwise, and the uses of single-use approvals are recorded for Kafka and read back.

Pure: the book and the verdict function, no broker (the broker tests are in
tests/approvals/test_used_on_kafka.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.approvals import ApprovalBook, MatchPolicy, MatchResult
from agent.approvals.signing import sign_approval
from agent.approvals.uses import ApprovalUse
from agent.config import load_agent_config
from agent.contract import ChangeKind, Verdict
from agent.errors import ConfigError
from tests.approvals.factory import KEY_PRIVATE, KEY_PUBLIC, at, record, record_yaml

CONFIG = Path(__file__).parents[2] / "config"


def decide(book: ApprovalBook, value: float = 185.0) -> MatchResult:
    return book.decide(controller="press-01", tag="temperature_sp",
                       change_kind=ChangeKind.SETPOINT_CHANGE, new_value=value,
                       occurred_at=at(12))


def signed_value(**changes: Any) -> bytes:
    signed = sign_approval(record(**changes), KEY_PRIVATE)
    return signed.model_dump_json(exclude_none=True).encode()


def unsigned_value(**changes: Any) -> bytes:
    return json.dumps(record_yaml(**changes)).encode()


def test_an_unsigned_approval_from_the_topic_is_invalid_by_default() -> None:
    book = ApprovalBook([], policy=MatchPolicy(trusted_keys=[KEY_PUBLIC]))
    book.apply_topic_record(b"CR-1", unsigned_value())
    result = decide(book)
    assert result.verdict is Verdict.APPROVAL_INVALID
    assert result.reason == (
        "approval CR-1 arrived on the approvals topic unsigned, and approvals from the topic "
        "must be signed (approvals.topic_require_signed)"
    )


def test_a_signed_approval_from_the_topic_authorises() -> None:
    book = ApprovalBook([], policy=MatchPolicy(trusted_keys=[KEY_PUBLIC]))
    book.apply_topic_record(b"CR-1", signed_value())
    assert decide(book).verdict is Verdict.AUTHORIZED


def test_a_forged_approval_from_the_topic_is_invalid() -> None:
    book = ApprovalBook([], policy=MatchPolicy(trusted_keys=[KEY_PUBLIC]))
    forged = json.loads(signed_value())
    forged["expected"] = {"exact": 230.0}  # altered after signing
    book.apply_topic_record(b"CR-1", json.dumps(forged).encode())
    result = decide(book, 230.0)
    assert result.verdict is Verdict.APPROVAL_INVALID
    assert "no trusted key verifies" in result.reason


def test_without_a_key_nothing_from_the_topic_is_trusted_but_files_keep_their_default(
    tmp_path: Path,
) -> None:
    """Fail safe: the policy alone (no key) makes every topic approval invalid, while an
    unsigned file approval still authorises (files keep ``require_signed: false``)."""
    path = tmp_path / "approvals.yaml"
    path.write_text(yaml.safe_dump({"approvals": [record_yaml(id="CR-F", tag="pressure_sp")]}))
    book = ApprovalBook([path], policy=MatchPolicy())
    book.apply_topic_record(b"CR-1", unsigned_value())
    assert decide(book).verdict is Verdict.APPROVAL_INVALID
    from_file = book.decide(controller="press-01", tag="pressure_sp",
                            change_kind=ChangeKind.SETPOINT_CHANGE, new_value=185.0,
                            occurred_at=at(12))
    assert from_file.verdict is Verdict.AUTHORIZED


def test_a_site_may_trust_every_writer_of_the_topic() -> None:
    book = ApprovalBook([], policy=MatchPolicy(topic_require_signed=False))
    book.apply_topic_record(b"CR-1", unsigned_value())
    assert decide(book).verdict is Verdict.AUTHORIZED


def test_a_single_use_approval_waits_for_the_uses_on_kafka() -> None:
    book = ApprovalBook([], policy=MatchPolicy(trusted_keys=[KEY_PUBLIC]), uses_on_kafka=True)
    book.apply_topic_record(b"CR-1", signed_value(single_use=True))
    waiting = decide(book)
    assert waiting.verdict is Verdict.UNAPPROVED
    assert "have not been read since the agent started" in waiting.reason
    assert book.pending_uses() == [] and "CR-1" not in book.used()
    book.uses_loaded()
    assert decide(book).verdict is Verdict.AUTHORIZED
    (use,) = book.pending_uses()
    assert (use.approval_id, use.controller, use.tag, use.used_at) == (
        "CR-1", "press-01", "temperature_sp", at(12))
    book.uses_spooled([use])
    assert book.pending_uses() == []


def test_a_reusable_approval_does_not_wait_for_the_uses() -> None:
    book = ApprovalBook([], policy=MatchPolicy(trusted_keys=[KEY_PUBLIC]), uses_on_kafka=True)
    book.apply_topic_record(b"CR-1", signed_value())
    assert decide(book).verdict is Verdict.AUTHORIZED
    assert book.pending_uses() == []


def test_a_use_read_from_kafka_withdraws_the_approval_and_is_kept_locally(
    tmp_path: Path,
) -> None:
    state = tmp_path / "approvals-used.json"
    book = ApprovalBook([], policy=MatchPolicy(trusted_keys=[KEY_PUBLIC]), state_path=state,
                        uses_on_kafka=True)
    book.apply_topic_record(b"CR-1", signed_value(single_use=True))
    use = ApprovalUse(approval_id="CR-1", used_at=at(11), controller="press-01",
                      tag="temperature_sp", agent_id="edge-01")
    assert book.apply_used_records([
        (use.kafka_key(), use.to_json()),
        (b"CR-1", None),                         # a tombstone never undoes a use
        (b"junk", b"{not json"),                 # refused, counted, logged
        (use.kafka_key(), use.to_json()),        # a second copy adds nothing
    ]) == 1
    book.uses_loaded()
    result = decide(book)
    assert result.verdict is Verdict.UNAPPROVED
    assert result.reason == (
        "approval CR-1 is single-use and was already used (by the change at "
        "2026-11-23T11:00:00+00:00)"
    )
    assert json.loads(state.read_text())["used"] == {"CR-1": "2026-11-23T11:00:00+00:00"}


def test_the_use_record_is_json_keyed_by_the_approval() -> None:
    use = ApprovalUse(approval_id="CR-9", used_at=at(9, 30), controller="oven-01",
                      tag="temperature_sp", agent_id="edge-01")
    assert use.kafka_key() == b"CR-9"
    assert json.loads(use.to_json()) == {
        "approval_id": "CR-9", "used_at": "2026-11-23T09:30:00Z", "controller": "oven-01",
        "tag": "temperature_sp", "agent_id": "edge-01", "schema": "otwatch.approval-use/1",
    }
    assert ApprovalUse.model_validate_json(use.to_json()) == use


def agent_yaml(tmp_path: Path, **approvals: Any) -> Path:
    cfg = yaml.safe_load((CONFIG / "agent.yaml").read_text())
    cfg["approvals"].update(approvals)
    cfg["approvals"]["files"] = [str(CONFIG / "approvals.yaml")]
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_approvals_from_the_topic_without_a_trusted_key_stop_the_start(tmp_path: Path) -> None:
    path = agent_yaml(tmp_path, from_topic=True)
    with pytest.raises(ConfigError) as caught:
        load_agent_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: approvals: ")
    assert "approvals.trusted_keys is empty" in message
    assert "fix: add the change-control signer's public key" in message
    assert "approvals.topic_require_signed: false" in message


@pytest.mark.parametrize("approvals", [
    {"from_topic": True, "trusted_keys": [KEY_PUBLIC]},
    {"from_topic": True, "topic_require_signed": False},
    {"from_topic": False},
])
def test_approvals_from_the_topic_load_with_a_key_or_an_explicit_opt_out(
    tmp_path: Path, approvals: dict[str, Any]
) -> None:
    config = load_agent_config(agent_yaml(tmp_path, **approvals))
    assert config.approvals.from_topic is approvals["from_topic"]
    assert config.approvals.record_uses_on_kafka


def test_require_signed_without_a_key_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"approvals\.require_signed is true but "
                                          r"approvals\.trusted_keys is empty"):
        load_agent_config(agent_yaml(tmp_path, require_signed=True))


def test_a_trusted_key_that_is_not_one_names_its_place(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"trusted_keys\[1\]: an Ed25519 public key is 32 "):
        load_agent_config(agent_yaml(tmp_path, trusted_keys=[KEY_PUBLIC, "QUJD"]))
