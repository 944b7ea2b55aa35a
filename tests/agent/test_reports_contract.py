"""What the agent's fast path builds (events of validated parts, not validated again; snapshot
hashed incrementally; signed with its seq in one serialisation) is what the contract accepts:
each event equals the model validation gives, the bytes in the spool parse back into the same
event, carry a valid signature, and every suspect event's snapshot hash is the hash of the
controller's watched values at that batch."""

from __future__ import annotations

import math
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from agent.config import AgentConfig, load_agent_config
from agent.contract import ChangeKind, SuspectChange, TagKind, TagRef, Verdict
from agent.contract.signing import verify_event
from agent.detect import Change
from agent.recipes import RecipeTag
from agent.reports import new_event_id, tag_ref
from agent.runner import Agent
from agent.snapshot_digest import snapshot_sha256
from agent.sources.base import Connected, Reading, Readings
from tests.agent.sources.factories import SAMPLE

TAGS = 600  # over the 256 values a snapshot shares whole: the by-reference path
T0 = datetime.now(UTC).replace(microsecond=0)


def config(state: Path) -> AgentConfig:
    return AgentConfig.model_validate({
        "agent": {"id": "edge-contract", "site": "plant-1", "state_dir": str(state)},
        "kafka": {"bootstrap_servers": "127.0.0.1:1", "enable_idempotence": False},
        "metrics": {"port": 0},
        "controllers": [{
            "id": "opc-big", "protocol": "opcua", "endpoint": "opc.tcp://127.0.0.1:4840",
            "tags": [{"name": f"sp_{i:04d}", "kind": "setpoint", "node": f"ns=2;s=sp{i}"}
                     for i in range(TAGS)],
        }],
    })


@pytest.mark.asyncio
async def test_spooled_bytes_validate_verify_and_hash_the_values_at_detection(
    tmp_path: Path,
) -> None:
    agent = Agent(config(tmp_path))
    try:
        watcher = agent.watchers["opc-big"]
        values = {f"sp_{i:04d}": float(i) for i in range(TAGS)}
        await watcher.on_event(Connected(T0, session="s1"))
        await watcher.on_event(Readings(T0, {k: Reading(v, T0) for k, v in values.items()}))
        odd = [float("nan"), math.inf, 2**63, "text", True, {"id": "R1", "v": -math.inf}]
        expected_hashes = []
        for n, new in enumerate(odd, 1):
            at = T0 + timedelta(seconds=n)
            batch = {f"sp_{n:04d}": new, f"sp_{n + 100:04d}": float(n)}
            values.update(batch)
            await watcher.on_event(
                Readings(at, {k: Reading(v, at) for k, v in batch.items()}, complete=False)
            )
            expected_hashes.append(snapshot_sha256(values))
        rows = agent.spool.peek(100)
        assert len(rows) == 2 * len(odd)
        keys = {agent.signer.key_id: agent.signer.public_key_b64}
        seqs = []
        for (_id, _topic, key, raw), expected in zip(rows, [h for h in expected_hashes
                                                            for _ in range(2)], strict=True):
            event = SuspectChange.model_validate_json(raw)
            assert event.to_json() == raw  # the stored bytes are the canonical form
            assert verify_event(raw, keys).ok
            assert key == b"plant-1/opc-big"
            assert event.verdict is not Verdict.AUTHORIZED
            assert event.snapshot is not None and event.snapshot.sha256 == expected
            seqs.append(event.seq)
            assert orjson.loads(raw)["seq"] == event.seq
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and seqs[0] >= 1
    finally:
        agent.spool.close()


def test_event_ids_are_distinct_time_ordered_uuids() -> None:
    before_ms = time.time_ns() // 1_000_000
    ids = [new_event_id() for _ in range(20_000)]
    after_ms = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for text in ids[:2000]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # the canonical lower-case spelling
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    # RFC 9562 5.7: the top 48 bits are the Unix time in ms, when the id was made
    stamps = [uuid.UUID(text).int >> 80 for text in ids]
    assert before_ms <= stamps[0] and stamps[-1] <= after_ms
    assert stamps == sorted(stamps)  # what keeps the classifier's id index append-mostly
    # every hex digit of the 74 random bits takes every value
    free = [i for i in range(15, 36) if i not in (18, 19, 23)]
    assert all(len({t[i] for t in ids}) == 16 for i in free)
    assert {t[19] for t in ids} == set("89ab")


def test_a_forked_child_gives_other_event_ids_than_its_parent() -> None:
    new_event_id()  # the parent holds random bytes for ids not yet given out
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its next ids, to the parent, then out at once
        os.write(write, " ".join(new_event_id() for _ in range(8)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as pipe:
        theirs = set(pipe.read().split())
    ours = {new_event_id() for _ in range(8)}
    assert len(theirs) == 8 and not ours & theirs


def _validated(event: SuspectChange) -> SuspectChange:
    """The event as ``model_validate`` builds it from the same fields (schema left to its
    default, as the agent's builder did before it stopped validating its own events)."""
    fields = {k: v for k, v in event.__dict__.items() if k != "schema_"}
    return SuspectChange.model_validate(fields)


def test_every_kind_of_event_the_reports_build_is_what_validation_gives(tmp_path: Path) -> None:
    agent = Agent(config(tmp_path))
    try:
        reports = agent.watchers["opc-big"].reports
        tag = agent.config.controllers[0].tags[3]
        reports.context.update({"lot": "L-7", "temp": float("nan"), "big": 2**70})
        at = T0 + timedelta(seconds=5)
        reports.open_batch(set())
        odd = [float("nan"), -math.inf, 2**63, 2**70, "text", True, None, 7,
               {"id": "R1", "v": -math.inf, "n": {"$float": "Infinity"}}]
        events = [reports.change(Change(tag, old, new, at, ChangeKind.SETPOINT_CHANGE), at,
                                 {tag.name: "operator 4"})
                  for old, new in zip(odd, [*odd[1:], odd[0]], strict=True)]
        events += [
            reports.gap(T0, at, None), reports.restart("s1", "s2", at, None),
            reports.tag_gap(tag, T0, at, "bad node"), reports.unresolved(tag, "no node", T0, at),
        ]
        events = reports.finish(events, set())
        for event in events:
            validated = _validated(event)
            assert event == validated
            assert event.model_fields_set == validated.model_fields_set
            assert event.to_json() == validated.to_json()
            for a, b in ((event.old_value, validated.old_value),
                         (event.new_value, validated.new_value)):
                assert type(a) is type(b)  # 2**70 a float in both, NaN a float in both
        assert type(events[0].context["big"]) is float
    finally:
        agent.spool.close()


def test_a_value_the_contract_refuses_is_refused_when_the_event_is_built(
    tmp_path: Path,
) -> None:
    agent = Agent(config(tmp_path))
    try:
        reports = agent.watchers["opc-big"].reports
        tag = agent.config.controllers[0].tags[0]
        with pytest.raises(ValueError, match="not an array"):
            reports.change(Change(tag, 1.0, [1, 2], T0, ChangeKind.SETPOINT_CHANGE), T0, {})
    finally:
        agent.spool.close()


def test_each_tags_reference_is_what_validation_gives() -> None:
    """`tag_ref` builds from the validated config without validating again: every watched
    tag of the sample (units, critical to quality, each protocol's address) and a recipe."""
    tags = [t for c in load_agent_config(SAMPLE).controllers for t in c.tags if t.is_watched]
    tags.append(RecipeTag(name="active_recipe", kind=TagKind.RECIPE, critical_to_quality=True,
                          members=("a", "b")))
    assert any(t.unit for t in tags) and any(t.critical_to_quality for t in tags)
    for tag in tags:
        ref = tag_ref(tag)
        address = tag.event_address if tag.name != "active_recipe" else "recipe(a, b)"
        validated = TagRef(name=tag.name, address=address, kind=tag.kind,
                           critical_to_quality=tag.critical_to_quality, unit=tag.unit)
        assert ref == validated and ref.model_fields_set == validated.model_fields_set
        assert ref.model_copy(update={"unit": "bar"}).unit == "bar"
