"""Replaying the audit trail: what every record, ticket and evidence row must hold, from the
trail alone, compared with what the database holds (`detectors.records.tamper` runs it).

The chain (`trail.verify_entries`) proves the trail was not edited; the replay proves the
*rows* were not: a record's state or a section edited in SQL, a ticket's status changed, an
evidence row's bytes swapped, a row added or removed without its trail entry.

One small applier per trail action (the entry's ``field``) moves the expected state on; the
table `APPLIERS` is the one place to extend when a command writes a new kind of entry. An
action no applier knows is a finding, never a crash: this verify cannot vouch for it.

Where the trail of an old store does not carry a value (records opened before the replay
existed lack ``description`` and ``indicators`` in their opening entry), that value is not
compared; everything the trail does carry is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, select

from detectors.records.load import load_records
from detectors.records.models import (
    Containment,
    ImpactAssessment,
    NcLog,
    RootCauseAnalysis,
    State,
    TrailEntry,
)
from detectors.records.tables import evidence, records, tickets


@dataclass(frozen=True, order=True)
class Finding:
    """One thing the database holds that the trail does not vouch for.

    ``seq`` is the trail entry that set the expected value (None: the row has no entry at
    all); findings sort by it, so the first one is the first bad item."""

    seq: int
    record_id: str
    item: str
    problem: str

    def __str__(self) -> str:
        at = f"trail entry {self.seq}" if self.seq else "no trail entry"
        return f"record {self.record_id}, {self.item} ({at}): {self.problem}"


#: The record's editable sections as a new record has them (`MasterRecord` defaults).
SECTION_DEFAULTS: dict[str, Any] = {
    "description": None,  # set by the opening entry
    "log": NcLog().model_dump(mode="json"),
    "impact": ImpactAssessment().model_dump(mode="json"),
    "affected_lots": [],
    "containment": Containment().model_dump(mode="json"),
    "rca": RootCauseAnalysis().model_dump(mode="json"),
    "capa_actions": [],
    "effectiveness_check": None,
}
#: Columns of ``records`` fixed by the opening entry (compared as stored text or JSON).
HEADER = ("classification", "security_ticket", "controller", "tag", "site", "line",
          "correlation_key", "rules_fired", "criteria_version", "detected_at")


@dataclass
class Expected:
    """What one record must hold, per the trail; ``set_by`` names the entry behind each value
    and ``unknown`` the values this trail does not carry."""

    record_id: str
    values: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)
    ticket: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)
    set_by: dict[str, int] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)

    def put(self, item: str, value: Any, seq: int) -> None:
        self.values[item] = value
        self.set_by[item] = seq


@dataclass
class Replay:
    """The expected state of every record after the entries applied so far."""

    records: dict[str, Expected] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def find(self, entry: TrailEntry, problem: str) -> None:
        self.findings.append(Finding(entry.seq, entry.record_id, f"field {entry.field}", problem))

    def expected(self, entry: TrailEntry) -> Expected | None:
        found = self.records.get(entry.record_id)
        if found is None:
            self.find(entry, "the trail changes a record it never opened")
        return found


Applier = Callable[[Replay, TrailEntry], None]


def _json(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


# --- the appliers: one per trail action ------------------------------------------------------


def _opened(replay: Replay, entry: TrailEntry) -> None:
    snap = _json(entry.new) or {}
    if entry.record_id in replay.records:
        replay.find(entry, "the trail opens this record a second time")
        return
    exp = Expected(entry.record_id, sections={k: _copy(v) for k, v in SECTION_DEFAULTS.items()})
    for name in HEADER:
        exp.put(name, snap.get(name), entry.seq)
    for name in ("state", "severity"):
        exp.put(name, snap.get(name), entry.seq)
    exp.put("created_at", entry.at, entry.seq)
    exp.put("last_event_at", snap.get("detected_at"), entry.seq)
    exp.put("cancel_reason", "", entry.seq)
    exp.ticket = {"id": snap.get("security_ticket"), "severity": snap.get("severity"),
                  "status": "open", "indicators": snap.get("indicators")}
    if "description" in snap:
        exp.sections["description"] = snap["description"]
    else:
        exp.unknown.add("description")
    if "indicators" not in snap:
        exp.unknown.add("ticket.indicators")
    for name in (*SECTION_DEFAULTS, "ticket.id", "ticket.severity",
                 "ticket.status", "ticket.indicators"):
        exp.set_by.setdefault(name, entry.seq)
    exp.evidence[str(snap.get("event_id"))] = {"sha256": snap.get("sha256"),
                                               "severity": snap.get("severity"),
                                               "seq": entry.seq}
    replay.records[entry.record_id] = exp


def _evidence(replay: Replay, entry: TrailEntry) -> None:
    exp = replay.expected(entry)
    if exp is None:
        return
    for item in _json(entry.new) or []:
        exp.evidence[str(item.get("event_id"))] = {"sha256": item.get("sha256"),
                                                   "severity": item.get("severity"),
                                                   "seq": entry.seq}
        detected = item.get("detected_at")
        if detected is None:
            exp.unknown.add("last_event_at")  # attached before the trail carried it
        elif detected > (exp.values.get("last_event_at") or ""):
            exp.put("last_event_at", detected, entry.seq)


def _severity(replay: Replay, entry: TrailEntry) -> None:
    exp = replay.expected(entry)
    if exp is not None:
        exp.put("severity", _json(entry.new), entry.seq)
        exp.ticket["severity"] = _json(entry.new)
        exp.set_by["ticket.severity"] = entry.seq


def _state(replay: Replay, entry: TrailEntry) -> None:
    exp = replay.expected(entry)
    if exp is not None:
        state = _json(entry.new)
        exp.put("state", state, entry.seq)
        exp.put("cancel_reason", entry.reason if state == State.CANCELLED.value else "",
                entry.seq)


def _ticket(name: str) -> Applier:
    def apply(replay: Replay, entry: TrailEntry) -> None:
        exp = replay.expected(entry)
        if exp is not None:
            exp.ticket[name] = _json(entry.new)
            exp.set_by[f"ticket.{name}"] = entry.seq
            exp.unknown.discard(f"ticket.{name}")
    return apply


def _section(replay: Replay, entry: TrailEntry) -> None:
    """``section`` or ``section.key``: the entry's new value is the validated value stored."""
    exp = replay.expected(entry)
    if exp is None:
        return
    section, _, key = entry.field.partition(".")
    value = _json(entry.new)
    if not key:
        exp.sections[section] = value
        exp.unknown.discard(section)
    elif isinstance(exp.sections.get(section), dict):
        exp.sections[section][key] = value
    else:
        replay.find(entry, f"section {section!r} is not an object; cannot set its key {key!r}")
        return
    exp.set_by[section] = entry.seq


def _no_row(replay: Replay, entry: TrailEntry) -> None:
    """Entries that change no row checked here: a comment; a signature (its row is checked
    against its entry by `signing.signature_problems`)."""
    replay.expected(entry)


#: Trail action (the entry's ``field``) → its applier. A ``section.key`` field falls back to
#: its section's applier. Extend here when a command writes a new kind of entry.
APPLIERS: dict[str, Applier] = {
    "record": _opened,
    "evidence": _evidence,
    "severity": _severity,
    "state": _state,
    "ticket.status": _ticket("status"),
    "ticket.indicators": _ticket("indicators"),
    "signature": _no_row,
    "comment": _no_row,
    **{section: _section for section in SECTION_DEFAULTS},
}


def applier_for(action: str) -> Applier | None:
    found = APPLIERS.get(action)
    if found is None and "." in action:
        section = action.partition(".")[0]
        found = APPLIERS.get(section) if section in SECTION_DEFAULTS else None
    return found


def replay(entries: Iterable[TrailEntry]) -> Replay:
    """Apply every entry in order; an unknown action is a finding (and skipped)."""
    state = Replay()
    for entry in entries:
        apply = applier_for(entry.field)
        if apply is None:
            state.find(entry, f"unknown trail action {entry.field!r}: this verify has no "
                              "replay for it (add it to detectors.records.replay.APPLIERS)")
            continue
        apply(state, entry)
    return state


def _copy(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


# --- comparing with the database --------------------------------------------------------------


def compare(conn: Connection, state: Replay) -> list[Finding]:
    """Every difference between the live rows and the replayed state, first bad item first."""
    findings = list(state.findings)
    live_rows = {row.id: row for row in conn.execute(select(records))}
    live_records = {r.id: r for r in load_records(conn)}
    for rid in sorted(live_rows.keys() - state.records.keys()):
        findings.append(Finding(0, rid, "record row", "the database holds a record that no "
                                "trail entry opened (inserted outside otwatch)"))
    for rid, exp in state.records.items():
        row = live_rows.get(rid)
        if row is None:
            findings.append(Finding(exp.set_by["created_at"], rid, "record row",
                                    "the trail opened this record but its row is gone"))
            continue
        findings += _record_findings(exp, row._mapping)
        dumped = live_records[rid].model_dump(mode="json")
        findings += _section_findings(exp, dumped)
    findings += _ticket_findings(conn, state)
    findings += _evidence_findings(conn, state)
    return sorted(findings)


def _record_findings(exp: Expected, row: Any) -> list[Finding]:
    out = []
    for name, want in exp.values.items():
        if name in exp.unknown:
            continue
        have = row[name]
        if name == "rules_fired":
            have = orjson.loads(have)
        if have != want:
            out.append(Finding(exp.set_by[name], exp.record_id, f"field {name}",
                               f"the database has {have!r}; the trail says {want!r}"))
    return out


def _section_findings(exp: Expected, dumped: dict[str, Any]) -> list[Finding]:
    out = []
    for name, want in exp.sections.items():
        if name in exp.unknown:
            continue
        have = dumped.get(name)
        if have == want:
            continue
        item, have, want = first_difference(name, have, want)
        out.append(Finding(exp.set_by[name], exp.record_id, f"field {item}",
                           f"the database has {_short(have)}; the trail says {_short(want)}"))
    return out


def first_difference(path: str, have: Any, want: Any) -> tuple[str, Any, Any]:
    """The deepest place where two JSON values differ: ``capa_actions[0].status``."""
    if isinstance(have, dict) and isinstance(want, dict):
        key = next((k for k in sorted({*have, *want}) if have.get(k) != want.get(k)), None)
        if key is not None:
            return first_difference(f"{path}.{key}", have.get(key), want.get(key))
    if isinstance(have, list) and isinstance(want, list) and len(have) == len(want):
        index = next((n for n, (a, b) in enumerate(zip(have, want, strict=True)) if a != b),
                     None)
        if index is not None:
            return first_difference(f"{path}[{index}]", have[index], want[index])
    return path, have, want


def _ticket_findings(conn: Connection, state: Replay) -> list[Finding]:
    out = []
    live = {row.record_id: row for row in conn.execute(select(tickets))}
    for rid, exp in state.records.items():
        row = live.get(rid)
        if row is None:
            out.append(Finding(exp.set_by["ticket.id"], rid, "ticket",
                               f"the ticket {exp.ticket['id']} of this record is gone"))
            continue
        have = {"id": row.id, "severity": row.severity, "status": row.status,
                "indicators": orjson.loads(row.indicators)}
        for name, want in exp.ticket.items():
            if f"ticket.{name}" in exp.unknown or have[name] == want:
                continue
            out.append(Finding(exp.set_by[f"ticket.{name}"], rid, f"ticket {row.id} {name}",
                               f"the database has {have[name]!r}; the trail says {want!r}"))
    for rid in sorted(live.keys() - state.records.keys()):
        out.append(Finding(0, rid, f"ticket {live[rid].id}",
                           "a ticket of a record no trail entry opened"))
    return out


def _evidence_findings(conn: Connection, state: Replay) -> list[Finding]:
    out: list[Finding] = []
    seen: set[str] = set()
    for row in conn.execute(select(evidence).order_by(evidence.c.record_id)):
        seen.add(row.event_id)
        out += _one_evidence(state, row)
    for rid, exp in state.records.items():
        for event_id, want in exp.evidence.items():
            if event_id not in seen:
                out.append(Finding(want["seq"], rid, f"evidence {event_id}",
                                   "the trail lists this evidence but its row is gone"))
    return out


def _one_evidence(state: Replay, row: Any) -> list[Finding]:
    rid, event_id = row.record_id, row.event_id
    exp = state.records.get(rid)
    want = None if exp is None else exp.evidence.get(event_id)
    item = f"evidence {event_id}"
    if want is None:
        return [Finding(0, rid, item, "an evidence row no trail entry lists for this record "
                                      "(added or moved outside otwatch)")]
    seq = int(want["seq"])
    actual = hashlib.sha256(row.raw.encode()).hexdigest()
    if row.sha256 != want["sha256"]:
        return [Finding(seq, rid, item, f"its sha256 column is {row.sha256}; the trail says "
                                        f"{want['sha256']}")]
    if actual != row.sha256:
        return [Finding(seq, rid, item, f"its bytes hash to {actual}, not to the SHA-256 "
                                        f"{row.sha256} the trail recorded (content edited)")]
    event = orjson.loads(row.raw)
    for column in ("change_kind", "verdict"):
        if row._mapping[column] != event.get(column):
            return [Finding(seq, rid, f"{item} {column}", f"the row says "
                            f"{row._mapping[column]!r}; its own bytes say {event.get(column)!r}")]
    if want.get("severity") is not None and row.severity != want["severity"]:
        return [Finding(seq, rid, f"{item} severity", f"the row says {row.severity!r}; the "
                                                      f"trail says {want['severity']!r}")]
    return []


def _short(value: Any, limit: int = 120) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"
