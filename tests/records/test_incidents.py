"""Incidents that read right: a record is the union over its evidence, escalations are in the
trail by the classifier with a reason, every evidence row names its controller and tag, and a
burst across the controllers of one line is one record (one classifier process, or several
sharing the partitions). SQLite and PostgreSQL, the shipped criteria."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from agent.contract import SuspectChange
from detectors.classification import Classification, ClassKind, Severity
from detectors.correlate import BurstCorrelator, BurstSettings
from detectors.criteria import Criteria, classify, load_criteria
from detectors.records import RecordStore
from detectors.records.checkpoints import Interval
from detectors.records.export import export_csv, export_html
from detectors.records.tables import evidence, records
from detectors.records.tamper import verify_store
from detectors.records.trail import CLASSIFIER, iso
from tests.support.events import make_event

CRITERIA = load_criteria(Path(__file__).resolve().parents[2] / "config" / "criteria.yaml")
T = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday in working hours


def setpoint(n: int, controller: str = "press-01", *, s: float = 0, line: str = "line-a",
             **over: Any) -> SuspectChange:
    return make_event(
        event_id=f"sp-{n}", seq=n, controller={"id": controller}, line=line,
        detected_at=T + timedelta(seconds=s), occurred_at=T + timedelta(seconds=s),
        verdict_reason=f"no approved change record for {controller}/temperature_sp", **over,
    )


def download(n: int, controller: str = "press-01", *, s: float = 0) -> SuspectChange:
    return make_event(
        event_id=f"dl-{n}", seq=n, controller={"id": controller}, line="line-a", actor="unknown",
        tag={"name": "program_checksum", "kind": "program", "unit": None,
             "critical_to_quality": False},
        change_kind="program_change", old_value="4b1d9e07c3a25f88", new_value="e3a0c55d19b7f402",
        detected_at=T + timedelta(seconds=s), occurred_at=T + timedelta(seconds=s),
        verdict_reason=f"no approved change record for {controller}/program_checksum",
    )


def record(store: RecordStore, *events: SuspectChange, criteria: Criteria = CRITERIA,
           now: datetime = T) -> list[str]:
    items = [(ev, classify(ev, criteria)) for ev in events]
    outcomes = store.record_events(items, now=now, burst_window_s=criteria.burst.window_s)
    return [o.record_id or "(none)" for o in outcomes]


def test_a_program_download_joining_a_setpoint_record_makes_it_a_program_incident(
    store: RecordStore,
) -> None:
    (rid,) = record(store, setpoint(1))
    opened = store.get_record(rid)
    assert (opened.tag, opened.severity) == ("temperature_sp", Severity.HIGH)
    assert opened.description.startswith("setpoint change on press-01/temperature_sp")
    # A later batch (the record is read back from the store): the download joins it.
    assert record(store, download(2, s=30), now=T + timedelta(seconds=31)) == [rid]
    joined = store.get_record(rid)
    assert (joined.controller, joined.tag) == ("press-01", "program_checksum")
    assert joined.description.startswith("program change on press-01/program_checksum")
    program_rules = classify(download(2), CRITERIA).rules_fired
    assert joined.rules_fired == [*opened.rules_fired,
                                  *(r for r in program_rules if r not in opened.rules_fired)]
    assert joined.classification == "joint"
    # A setpoint joining after it does not take the title back.
    record(store, setpoint(3, s=60), now=T + timedelta(seconds=61))
    assert store.get_record(rid).description == joined.description
    escalations = {e.field: e for e in store.trail(rid) if e.field in
                   ("description", "headline", "rules_fired")}
    assert set(escalations) == {"description", "headline", "rules_fired"}
    assert all(e.actor == CLASSIFIER for e in escalations.values())
    assert "evidence dl-2 is the most serious event so far" in escalations["description"].reason
    assert escalations["headline"].new == '"press-01/program_checksum"'
    assert store.verify_trail().ok
    assert verify_store(store.database, key=None, every=Interval()).problems == []
    with store.database.write() as conn:  # the headline the escalation set, edited in SQL
        conn.execute(records.update().where(records.c.id == rid).values(tag="temperature_sp"))
    (problem,) = verify_store(store.database, key=None, every=Interval()).problems
    assert f"record {rid}, field headline" in problem
    assert "'press-01/temperature_sp'; the trail says 'press-01/program_checksum'" in problem


def decided(kind: ClassKind, severity: Severity, rule: str, key: str = "plant-1/press-01",
            ) -> Classification:
    return Classification(kind=kind, severity=severity, rules_fired=(rule,), criteria_version="t",
                          description=f"{rule} fired", correlation_key=key)


def test_a_security_only_event_joining_a_joint_record_is_listed_as_such(
    store: RecordStore,
) -> None:
    (first,) = store.record_events(
        [(setpoint(1), decided(ClassKind.JOINT, Severity.HIGH, "JQS-1"))], now=T)
    store.record_events(
        [(setpoint(2, s=5), decided(ClassKind.SECURITY_ONLY, Severity.CRITICAL, "S-9"))],
        now=T + timedelta(seconds=6))
    rec = store.get_record(first.record_id or "")
    assert [(e.event_id, e.classification, e.rules_fired) for e in rec.evidence] == [
        ("sp-1", "joint", ["JQS-1"]), ("sp-2", "security_only", ["S-9"])]
    assert (rec.classification, rec.severity, rec.rules_fired) == (
        "joint", Severity.CRITICAL, ["JQS-1", "S-9"])
    assert rec.ticket is not None and rec.ticket.severity is Severity.CRITICAL
    # every escalation is replayed; a row's own decision edited in SQL is named
    assert verify_store(store.database, key=None, every=Interval()).problems == []
    with store.database.write() as conn:
        conn.execute(evidence.update().where(evidence.c.event_id == "sp-2")
                     .values(classification="joint"))
        conn.execute(records.update().where(records.c.id == rec.id).values(tag="nothing"))
    problems = verify_store(store.database, key=None, every=Interval()).problems
    assert len(problems) == 2, problems
    assert any(f"record {rec.id}, evidence sp-2 classification" in p and "'joint'" in p
               and "'security_only'" in p for p in problems), problems
    assert any(f"record {rec.id}, field tag" in p and "'nothing'" in p
               for p in problems), problems


def test_quality_only_and_security_only_evidence_make_a_joint_record(store: RecordStore) -> None:
    (first,) = store.record_events(
        [(setpoint(1), decided(ClassKind.QUALITY_ONLY, Severity.MEDIUM, "Q-1"))], now=T)
    store.record_events(
        [(setpoint(2, s=5), decided(ClassKind.SECURITY_ONLY, Severity.MEDIUM, "S-1"))],
        now=T + timedelta(seconds=6))
    rid = first.record_id or ""
    assert store.get_record(rid).classification == "joint"
    (entry,) = [e for e in store.trail(rid) if e.field == "classification"]
    assert (entry.actor, entry.old, entry.new) == (CLASSIFIER, '"quality_only"', '"joint"')
    assert entry.reason == "escalated: evidence sp-2 concerns another function"
    assert verify_store(store.database, key=None, every=Interval()).problems == []


def test_each_evidence_row_names_its_controller_and_tag_in_the_store_and_exports(
    store: RecordStore,
) -> None:
    # One burst (the key of its first event) across two presses.
    burst = classify(setpoint(2, "press-02"), CRITERIA).model_copy(
        update={"correlation_key": "plant-1/press-01"})
    (rid, _) = [o.record_id for o in store.record_events(
        [(setpoint(1), classify(setpoint(1), CRITERIA)), (setpoint(2, "press-02"), burst)],
        now=T)]
    rec = store.get_record(rid or "")
    assert [(e.controller, e.tag) for e in rec.evidence] == [
        ("press-01", "temperature_sp"), ("press-02", "temperature_sp")]
    csv_text = export_csv(rec, store.trail(rec.id))
    assert "evidence[1],controller,press-02" in csv_text
    assert "evidence[1],tag,temperature_sp" in csv_text
    html = export_html(rec, store.trail(rec.id))
    assert "<th>controller</th><th>tag</th>" in html and "<td>press-02</td>" in html


def offered(correlators: list[BurstCorrelator[int]], owner: dict[str, int],
            events: list[SuspectChange], now: datetime) -> list[tuple[SuspectChange, Any]]:
    """Each event to the correlator of the process that owns its controller's partition;
    then every hold that is due."""
    out: list[tuple[SuspectChange, Any]] = []
    for n, ev in enumerate(events):
        out += [(e, ctx) for e, ctx, _ in correlators[owner[ev.controller.id]].offer(
            ev, n, now=now)]
    later = now + timedelta(seconds=CRITERIA.burst.window_s + 1)
    for correlator in correlators:
        out += [(e, ctx) for e, ctx, _ in correlator.due(now=later)]
    return out


BURST = [setpoint(1, "press-01"), setpoint(2, "press-02", s=1), setpoint(3, "oven-01", s=2),
         setpoint(4, "press-01", s=3), download(5, "oven-01", s=4)]


def test_a_burst_across_controllers_of_one_line_is_one_record(store: RecordStore) -> None:
    one: BurstCorrelator[int] = BurstCorrelator(CRITERIA.burst)
    placed = offered([one], dict.fromkeys(("press-01", "press-02", "oven-01"), 0), BURST, T)
    items = [(ev, classify(ev, CRITERIA, ctx)) for ev, ctx in placed]
    outcomes = store.record_events(items, now=T, burst_window_s=CRITERIA.burst.window_s)
    (rid,) = {o.record_id for o in outcomes}
    rec = store.get_record(rid or "")
    assert sorted(e.event_id for e in rec.evidence) == sorted(ev.event_id for ev in BURST)
    assert {e.controller for e in rec.evidence} == {"press-01", "press-02", "oven-01"}
    assert "S-3" in rec.rules_fired  # the burst rule
    assert rec.tag == "program_checksum"


def test_two_processes_that_each_see_part_of_a_burst_record_it_once(store: RecordStore) -> None:
    """Process 0 owns press-01 and press-02, process 1 owns oven-01: process 1 never sees a
    burst, and its event is released alone; the store puts it on the burst's record."""
    settings = BurstSettings(min_controllers=2, window_s=CRITERIA.burst.window_s)
    criteria = CRITERIA.model_copy(update={"burst": settings})
    correlators: list[BurstCorrelator[int]] = [BurstCorrelator(settings),
                                               BurstCorrelator(settings)]
    for c in correlators:
        c.shared = True
    owner = {"press-01": 0, "press-02": 0, "oven-01": 1}
    placed = offered(correlators, owner, BURST, T)
    assert {ev.event_id for ev, _ in placed} == {ev.event_id for ev in BURST}  # none lost
    by_process: list[list[tuple[SuspectChange, Classification]]] = [[], []]
    for ev, ctx in placed:
        by_process[owner[ev.controller.id]].append((ev, classify(ev, criteria, ctx)))
    ids = set()
    for items in (by_process[0], by_process[1]):  # each process's own transaction
        ids |= {o.record_id for o in store.record_events(
            items, now=T, burst_window_s=settings.window_s)}
    (rid,) = ids
    rec = store.get_record(rid or "")
    assert len(rec.evidence) == len(BURST) and len(store.list_records()) == 1
    assert [e.classification for e in rec.evidence if e.controller == "oven-01"] == [
        "joint", "joint"]


def test_the_union_of_classifications_and_the_headline_rank() -> None:
    from detectors.records.incident import rank, united_kind

    table = {
        ("joint", "security_only"): "joint", ("quality_only", "security_only"): "joint",
        ("quality_only", "quality_only"): "quality_only",
        ("security_only", "none"): "security_only", ("none", "none"): "none",
    }
    for (a, b), want in table.items():
        assert united_kind(a, b) == united_kind(b, a) == want, (a, b)
    # the kind of change first, then severity
    assert rank("high", "program_change") > rank("critical", "setpoint_change")
    assert rank("critical", "setpoint_change") > rank("high", "setpoint_change")
    assert rank("low", "setpoint_change") > rank("critical", "monitoring_gap")


_KINDS = list(ClassKind)
_SEVERITIES = list(Severity)
_CHANGES = ["setpoint_change", "program_change", "mode_change", "recipe_edit", "monitoring_gap"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_KINDS), st.sampled_from(_SEVERITIES),
                          st.sampled_from(["R1", "R2", "R3"]), st.sampled_from(_CHANGES)),
                min_size=1, max_size=12))
def test_a_summary_that_skips_repeated_decisions_says_what_joining_each_event_says(
    joins: list[tuple[ClassKind, Severity, str, str]],
) -> None:
    """`Summary.join` returns at once for a decision it joined before; joined one by one with
    that memory wiped each time, the same events must leave the same summary, the same
    reasons in the trail and the same answers."""
    from detectors.records.incident import Summary

    first = setpoint(0)
    start = decided(ClassKind.QUALITY_ONLY, Severity.LOW, "R0")
    fast = Summary.of_event(first, start, "first")
    slow = Summary.of_event(first, start, "first")
    for n, (kind, severity, rule, change) in enumerate(joins, 1):
        ev = setpoint(n, change_kind=change)
        cls = decided(kind, severity, rule)
        slow.joined.clear()
        assert fast.join(ev, cls, f"title {n}") == slow.join(ev, cls, f"title {n}")
    assert (fast.classification, fast.severity, fast.rules_fired, fast.description,
            fast.controller, fast.tag, fast.headline, fast.moved_by) == (
            slow.classification, slow.severity, slow.rules_fired, slow.description,
            slow.controller, slow.tag, slow.headline, slow.moved_by)


def test_times_formatted_once_per_batch_are_each_events_own(store: RecordStore) -> None:
    """Ingest formats each instant once per batch: equal instants in other offsets share the
    UTC text, and every event still gets the text of its own times (occurrence, detection)."""
    plus_two = timezone(timedelta(hours=2))
    times = [
        (T, T), (T.astimezone(plus_two), T), (T, T.astimezone(plus_two)),
        (T - timedelta(seconds=1), T.replace(microsecond=5)),
        (T.replace(tzinfo=None) - timedelta(seconds=2), T + timedelta(seconds=1)),
        (T.replace(tzinfo=plus_two), T.replace(tzinfo=None)),  # same fields, other instants
    ]
    events = [make_event(event_id=f"at-{n}", seq=n, occurred_at=occurred, detected_at=detected)
              for n, (occurred, detected) in enumerate(times, 1)]
    record(store, *events)
    with store.database.read() as conn:
        rows = conn.execute(select(evidence.c.event_id, evidence.c.occurred_at,
                                   evidence.c.detected_at).order_by(evidence.c.event_id)).all()
    assert [tuple(row) for row in rows] == [
        (ev.event_id, iso(ev.occurred_at), iso(ev.detected_at)) for ev in events]
    assert rows[0][1] == rows[1][1] == "2026-11-23T10:00:00.000000+00:00"
    assert verify_store(store.database, key=None, every=Interval()).problems == []
