"""The records two scenarios open, through the whole pipeline, each on a pipeline of its own.

The program-download scenario's record must be the unknown user's download (not the approved
download's restart), and the outage scenario's monitoring gaps must span the spells its labels
say the controllers were away. Each starts its own pipeline (`demo_pipeline`, as `make demo`
runs it) and reads the whole records database.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from agent.sources.opcua.subscribe import KEEPALIVE_S
from detectors.records import MasterRecord
from simulators.demo import CONFIG, Pipeline, start
from tests.support.pipeline import demo_pipeline, records, wait_until

pytestmark = pytest.mark.e2e
SCENARIOS = CONFIG / "scenarios"


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    with demo_pipeline(tmp_path) as running:
        yield running


def play(pipeline: Pipeline, name: str, workdir: Path, settle_s: float,
         until: Callable[[list[MasterRecord]], bool] | None = None) -> list[MasterRecord]:
    """Play a scenario to its last label, wait until the records satisfy ``until`` (if given),
    then ``settle_s`` more for anything else, and return them."""
    scenario = SCENARIOS / f"{name}.yaml"
    if not scenario.exists():
        pytest.skip(f"{scenario} has not arrived yet (the simulator engineer ships it)")
    import yaml

    actions = yaml.safe_load(scenario.read_text())["actions"]
    start(pipeline, scenario, workdir, with_ui=False)
    labels = workdir / "labels.jsonl"
    wait_until(lambda: labels.exists() and len(labels.read_text().splitlines()) >= len(actions),
               40, f"scenario {name} to play to its end", pipeline.check_alive)
    if until is not None:
        wait_until(lambda: until(records(workdir / "records.db")), 90,
                   f"the records scenario {name} must open", pipeline.check_alive)
    time.sleep(settle_s)  # detection, a possible burst hold, and the record write
    pipeline.check_alive()
    return records(workdir / "records.db")


def show(record: MasterRecord) -> str:
    """The record as the records API gives it, trimmed to what the scenario is about."""
    return json.dumps({
        "id": record.id, "classification": record.classification, "severity": record.severity,
        "controller": record.controller, "tag": record.tag, "description": record.description,
        "rules_fired": record.rules_fired,
        "evidence": [{"controller": e.controller, "tag": e.tag, "change_kind": e.change_kind,
                      "verdict": e.verdict, "classification": e.classification,
                      "gap": e.raw.get("gap"), "actor": e.raw.get("actor")}
                     for e in record.evidence],
    }, indent=1, default=str)


def test_program_download_the_record_is_the_unknown_users_download(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    opened = play(pipeline, "program-download", tmp_path, settle_s=12)
    print("\n" + "\n".join(show(r) for r in opened))
    assert len(opened) == 1, [show(r) for r in opened]
    (record,) = opened
    assert (record.controller, record.tag) == ("oven-01", "program_checksum")
    assert record.description.startswith("program change on oven-01/program_checksum")
    # The unknown user's download (its new checksum), not the approved one's restart.
    assert "-> 'e3a0c55d19b7f402'" in record.description and "by unknown" in record.description
    first = record.evidence[0]
    assert (first.tag, first.change_kind, first.raw["actor"]) == (
        "program_checksum", "program_change", "unknown")
    # JQS-3: a validated system's program changed; S-4: an unapproved program download.
    assert {"JQS-1", "JQS-3", "S-4"} <= set(record.rules_fired), record.rules_fired
    assert all(e.controller == "oven-01" for e in record.evidence)


#: How stale a sign of life may be when a controller goes away: a subscription reports a
#: keep-alive at most every `KEEPALIVE_S`, a poll reads every ``poll_interval_s`` (0.5 s in
#: the demo's agent config), plus scheduling on a busy machine.
SIGN_OF_LIFE_S = KEEPALIVE_S + 0.5 + 1.0
#: The agent's first reconnect delay (it doubles up to ``reconnect_max_s``), and the time a
#: reconnect and its first full read take on a busy machine.
FIRST_RETRY_S, RECONNECT_S = 0.5, 2.0


def gaps_of(record: MasterRecord, controller: str) -> list[tuple[datetime, datetime]]:
    return [(datetime.fromisoformat(gap["start"]), datetime.fromisoformat(gap["end"]))
            for gap in (e.raw["gap"] for e in record.evidence
                        if e.controller == controller and e.change_kind == "monitoring_gap")]


def gap_of(record: MasterRecord, controller: str, during: tuple[datetime, datetime] | None = None,
           ) -> tuple[datetime, datetime]:
    """The controller's one monitoring gap (told per tag or for the session: the same spell).

    ``during``: the gap over that spell only. Another fault of the scenario may be a gap of its
    own on a busy machine: the press's 3 s exception window, with the last read before it a
    few seconds late, was blind for longer than ``monitoring_gap_min_s``."""
    gaps = set(gaps_of(record, controller))
    if during is not None:
        gaps = {(start, end) for start, end in gaps if start <= during[1] and end >= during[0]}
    (gap,) = gaps
    return gap


def min_gap_s(workdir: Path, controller: str) -> float:
    """The controller's ``monitoring_gap_min_s`` in the agent's config: a shorter blind spell
    is no monitoring gap."""
    from agent.config import load_agent_config

    (entry,) = [c for c in load_agent_config(workdir / "agent.yaml").controllers
                if c.id == controller]
    return entry.monitoring_gap_min_s


def assert_gap_spans(gap: tuple[datetime, datetime], down: datetime, back: datetime,
                     what: str, gone: datetime | None = None) -> float:
    """The gap covers the spell the controller was away (``down`` to ``back``, from the
    scenario's labels), starts at the last sign of life before it, and ends at the agent's
    first reconnect after it: with a doubling backoff, that comes at most as long after
    ``back`` as the gap had lasted by then (plus the first delay and the reconnect itself).

    ``gone``: where the spell may have begun later than ``down`` (slow answers that a read
    may still catch before the controller goes off the network), the latest moment the
    agent can have heard it; the gap must cover at least ``gone`` to ``back``."""
    start, end = gap
    length = (end - start).total_seconds()
    gone = gone or down
    away = (back - gone).total_seconds()
    assert down - timedelta(seconds=SIGN_OF_LIFE_S) <= start <= gone, (what, start, down, gone)
    assert end >= back, (what, end, back)
    limit = 2 * (back - start).total_seconds() + FIRST_RETRY_S + RECONNECT_S
    assert away <= length <= limit, (what, length, away, limit)
    return length


def test_outage_the_gap_is_as_long_as_the_controller_was_unreachable(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    def evidence(recs: list[MasterRecord]) -> set[tuple[str, str, str]]:
        return {(e.controller, e.tag, e.change_kind) for r in recs for e in r.evidence}

    def all_found(recs: list[MasterRecord]) -> bool:
        """The oven's restart and its later setpoint change, and the press's offline change,
        are recorded. Waited for, not slept on: on a busy machine the simulated server can
        take 10 s to restart instead of 2, and the agent then comes back well after the
        scenario's last label."""
        found = {(c, t) for c, t, _ in evidence(recs)}
        return {("oven-01", "_session"), ("oven-01", "temperature_sp"),
                ("press-01", "temperature_sp")} <= found

    opened = play(pipeline, "outage", tmp_path, settle_s=6, until=all_found)
    print("\n" + "\n".join(show(r) for r in opened))
    labels = {(x["action"], x["controller"]): x for x in map(
        json.loads, (tmp_path / "labels.jsonl").read_text().splitlines())}

    def spell(action: str, controller: str) -> tuple[datetime, datetime]:
        label = labels[(action, controller)]  # started: the fault began; time: it ended
        return datetime.fromisoformat(label["started"]), datetime.fromisoformat(label["time"])

    by_controller = {r.controller: r for r in opened}
    # oven-01: its OPC UA server restarted (and renumbered its namespaces).
    down, back = spell("restart", "oven-01")
    oven = [r for r in opened if any(e.controller == "oven-01" for e in r.evidence)]
    (oven_record,) = oven
    # The restart itself is the record's evidence. Its gap is one only when the agent was
    # blind for at least monitoring_gap_min_s: the server is away about 4 s (below the demo's
    # 5 s), and the agent's reconnect backoff decides whether the blind spell passes 5 s. So
    # either the gap spans the absence, or there is none and the absence was shorter.
    assert any(e.controller == "oven-01" and e.change_kind == "program_change"
               for e in oven_record.evidence), show(oven_record)
    if gaps_of(oven_record, "oven-01"):
        oven_gap = assert_gap_spans(gap_of(oven_record, "oven-01"), down, back,
                                    "oven-01 restart")
    else:
        oven_gap = 0.0
        assert (back - down).total_seconds() < min_gap_s(tmp_path, "oven-01"), (down, back)
    # press-01: slow answers (as slow as the agent's read timeout), then off the network
    # while its setpoint was changed: one spell the agent could not watch. The slow answers
    # end 1 s before the press leaves the network, and a read that lands in that second
    # (it did, on a busy machine: the gap began 11 ms before the press went off the network)
    # rightly tells the agent the press was there: so the gap starts no later than that.
    down, _ = spell("slow_responses", "press-01")
    gone, back = spell("offline_change", "press-01")
    press = by_controller["press-01"]
    press_gap = assert_gap_spans(gap_of(press, "press-01", during=(gone, back)), down, back,
                                 "press-01 offline", gone=gone)
    assert press.tag == "temperature_sp" and "changed while unwatched" in press.description
    print(f"gaps: oven-01 {oven_gap:.1f} s (server away "
          f"{(spell('restart', 'oven-01')[1] - spell('restart', 'oven-01')[0]).total_seconds():.1f}"
          f" s), press-01 {press_gap:.1f} s")
