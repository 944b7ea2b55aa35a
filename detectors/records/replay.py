"""Replaying the audit trail: what every record, ticket and evidence row must hold, from the
trail alone, compared with what the database holds (`detectors.records.tamper` runs it).

The chain (`trail.verify_entries`) proves the trail was not edited; the replay proves the
*rows* were not: a record's state or a section edited in SQL, a ticket's status changed, an
evidence row's bytes swapped, a row added or removed without its trail entry.

One small applier per trail action (the entry's ``field``) moves the expected state on; the
table `APPLIERS` is the one place to extend when a command writes a new kind of entry. An
action no applier knows is a finding, never a crash: this verify cannot vouch for it.

Evidence that joins a record may escalate it (`incident`): ``severity``, ``classification``,
``rules_fired``, ``description`` and ``headline`` entries by the classifier, and
``security_ticket`` when a quality-only record (opened with no ticket) now concerns security.

Where the trail of an old store does not carry a value (records opened before the replay
existed lack ``description`` and ``indicators`` in their opening entry), that value is not
compared; everything the trail does carry is. `replay_compare` compares the replayed state
with the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from detectors.records.links import TICKET_FIELDS
from detectors.records.models import (
    Containment,
    ImpactAssessment,
    NcLog,
    RootCauseAnalysis,
    State,
    TrailEntry,
)


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
    "attachments": [],
}
#: Columns of ``records`` fixed by the opening entry (compared as stored text or JSON).
HEADER = ("classification", "security_ticket", "controller", "tag", "site", "line",
          "correlation_key", "rules_fired", "criteria_version", "detected_at")
#: Columns the workflow added (revision 0006) and the opening entry carries since: a record
#: opened before, or by the classifier for ``reported_by``, has them empty.
HEADER_SINCE_WORKFLOW = ("quality_impact", "security_impact", "recurrence_of", "reported_by")


@dataclass
class Expected:
    """What one record must hold, per the trail; ``set_by`` names the entry behind each value
    and ``unknown`` the values this trail does not carry."""

    record_id: str
    values: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)
    ticket: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Linked tickets by system (`links.TICKET_FIELDS`) and external references, in order.
    external_tickets: dict[str, dict[str, Any]] = field(default_factory=dict)
    external_refs: list[dict[str, Any]] = field(default_factory=list)
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
    for name in HEADER_SINCE_WORKFLOW:
        exp.put(name, snap.get(name, ""), entry.seq)
    for name in ("lead", "co_lead"):
        exp.put(name, "", entry.seq)
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
                 "ticket.status", "ticket.indicators", "external_refs"):
        exp.set_by.setdefault(name, entry.seq)
    if "event_id" in snap:  # a manual report (`report`) opens its record with no evidence
        # The record opens with what the criteria decided on its first event; a row recorded
        # before revision 0008 keeps no decision of its own (`_one_evidence` allows that).
        exp.evidence[str(snap["event_id"])] = {
            "sha256": snap.get("sha256"), "severity": snap.get("severity"), "seq": entry.seq,
            "classification": snap.get("classification"),
            "rules_fired": snap.get("rules_fired"), "opening": True}
    replay.records[entry.record_id] = exp


def _evidence(replay: Replay, entry: TrailEntry) -> None:
    exp = replay.expected(entry)
    if exp is None:
        return
    for item in _json(entry.new) or []:
        # ``classification`` and ``rules_fired`` since revision 0008 (absent: not compared)
        exp.evidence[str(item.get("event_id"))] = {
            "sha256": item.get("sha256"), "severity": item.get("severity"), "seq": entry.seq,
            "classification": item.get("classification"),
            "rules_fired": item.get("rules_fired")}
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


def _security_ticket(replay: Replay, entry: TrailEntry) -> None:
    """``security_ticket``: a quality-only record (no ticket) that evidence made joint or
    security gets its ticket, with its severity and indicators then (`ingest`)."""
    exp = replay.expected(entry)
    if exp is None:
        return
    if exp.values.get("security_ticket") is not None:
        replay.find(entry, "the trail opens a second security ticket for this record")
        return
    new = _json(entry.new) or {}
    exp.put("security_ticket", new.get("id"), entry.seq)
    exp.ticket = {"id": new.get("id"), "severity": new.get("severity"), "status": "open",
                  "indicators": new.get("indicators")}
    for name in ("ticket.id", "ticket.severity", "ticket.status", "ticket.indicators"):
        exp.set_by[name] = entry.seq
        exp.unknown.discard(name)


def _state(replay: Replay, entry: TrailEntry) -> None:
    exp = replay.expected(entry)
    if exp is not None:
        state = _json(entry.new)
        exp.put("state", state, entry.seq)
        exp.put("cancel_reason", entry.reason if state == State.CANCELLED.value else "",
                entry.seq)


def _escalated(replay: Replay, entry: TrailEntry) -> None:
    """``classification``, ``rules_fired``: evidence that joined widened what the record says
    (`incident.Summary`); the whole new value."""
    exp = replay.expected(entry)
    if exp is not None:
        exp.put(entry.field, _json(entry.new), entry.seq)


def _headline(replay: Replay, entry: TrailEntry) -> None:
    """``headline``: the most serious event's ``controller/tag`` now heads the record; kept
    as that one string (a tag may hold a slash), compared with the two columns joined."""
    exp = replay.expected(entry)
    if exp is None:
        return
    for name in ("controller", "tag"):
        exp.values.pop(name, None)
    exp.put("headline", _json(entry.new), entry.seq)


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


def _column(replay: Replay, entry: TrailEntry) -> None:
    """``lead``, ``co_lead``: a ``records`` column set to the entry's new value."""
    exp = replay.expected(entry)
    if exp is not None:
        exp.put(entry.field, _json(entry.new), entry.seq)


def _custody(replay: Replay, entry: TrailEntry) -> None:
    """A download (`attachments.read_with_custody`) changes no row, but it must name a file
    the record had when it was read."""
    exp = replay.expected(entry)
    if exp is None:
        return
    sha256 = (_json(entry.new) or {}).get("sha256")
    if sha256 not in {a.get("sha256") for a in exp.sections.get("attachments") or []}:
        replay.find(entry, f"the chain of custody names a file ({str(sha256)[:12]}…) the "
                           "record did not have attached at that point")


def _external_ticket(replay: Replay, entry: TrailEntry) -> None:
    """The whole ticket row of one system (`links`); ``reported_by`` names the remote actor
    and is not a column."""
    exp = replay.expected(entry)
    if exp is None:
        return
    new = _json(entry.new) or {}
    system = str(new.get("system"))
    exp.external_tickets[system] = {k: new.get(k, "") for k in TICKET_FIELDS}
    exp.set_by[f"external_ticket.{system}"] = entry.seq


def _external_refs(replay: Replay, entry: TrailEntry) -> None:
    exp = replay.expected(entry)
    if exp is not None:
        exp.external_refs = list(_json(entry.new) or [])
        exp.set_by["external_refs"] = entry.seq


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
    "classification": _escalated,
    "rules_fired": _escalated,
    "headline": _headline,
    "state": _state,
    "security_ticket": _security_ticket,
    "ticket.status": _ticket("status"),
    "ticket.indicators": _ticket("indicators"),
    "signature": _no_row,
    "comment": _no_row,
    "lead": _column,
    "co_lead": _column,
    "custody": _custody,
    "external_ticket": _external_ticket,
    "external_refs": _external_refs,
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
