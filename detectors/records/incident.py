"""What a master record says about its incident: the union over its evidence.

A record opens with what the criteria decided on its first event. Every event that joins it
may tell more: the record's **classification** becomes the union of the functions concerned
(quality and security together make it joint), its **severity** the highest, its **fired
rules** the union in the order they first fired, and its **headline** (title, controller and
tag) the most serious event's: the more serious kind of change first (a program download
outranks a recipe, a recipe a mode, a mode a setpoint, a setpoint a monitoring gap), then the
higher severity. So a program download that joins a setpoint record turns it into a program
incident and the title says so, however severe the setpoint changes were (the record's
severity is the highest either way). Each evidence row keeps its own classification: a
security-only event that joins a joint record is listed as security-only there.

`Summary.join` is pure; `changes` lists the fields an event moved, with why, for the audit
trail (the ingest writes them as the classifier's own entries).

Example::

    >>> summary = Summary.of_record(...)
    >>> summary.join(event, classification)      # True when it escalated the record
    >>> summary.changes(start)                   # [(field, old, new, reason), ...]
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from agent.contract import ChangeKind, SuspectChange
from detectors.classification import SEVERITY_ORDER, Classification, ClassKind, Severity

#: How serious a kind of change is, among events of the same severity.
CHANGE_RANK: dict[str, int] = {
    ChangeKind.PROGRAM_CHANGE.value: 5,
    ChangeKind.RECIPE_SWITCH.value: 4,
    ChangeKind.RECIPE_EDIT.value: 4,
    ChangeKind.MODE_CHANGE.value: 3,
    ChangeKind.SETPOINT_CHANGE.value: 2,
    ChangeKind.CHANGED_WHILE_UNWATCHED.value: 2,
    ChangeKind.MONITORING_GAP.value: 1,
}

_QUALITY = {ClassKind.JOINT.value, ClassKind.QUALITY_ONLY.value}
_SECURITY = {ClassKind.JOINT.value, ClassKind.SECURITY_ONLY.value}


def united_kind(a: str, b: str) -> str:
    """The classification of a record whose evidence is classified ``a`` and ``b``."""
    quality = a in _QUALITY or b in _QUALITY
    security = a in _SECURITY or b in _SECURITY
    if quality and security:
        return ClassKind.JOINT.value
    if quality:
        return ClassKind.QUALITY_ONLY.value
    return ClassKind.SECURITY_ONLY.value if security else ClassKind.NONE.value


def rank(severity: Severity | str, change_kind: str) -> tuple[int, int]:
    """How serious an event is for the headline: its kind of change, then its severity."""
    return CHANGE_RANK.get(change_kind, 0), SEVERITY_ORDER[Severity(severity)]


@dataclass
class Summary:
    """What a record says: kept in step with its evidence while a batch is recorded."""

    classification: str
    severity: Severity
    rules_fired: list[str]
    description: str
    controller: str
    tag: str
    #: The rank of the headline event (`rank`).
    headline: tuple[int, int]
    #: Field → the event that last moved it (the trail's reason names it).
    moved_by: dict[str, str] = field(default_factory=dict)
    #: What decided each event joined so far (`_signature`): joining the same again moves
    #: nothing (every field only rises), so most events of an incident cost one set lookup.
    joined: set[tuple[Any, ...]] = field(default_factory=set, compare=False, repr=False)

    @classmethod
    def of_event(cls, ev: SuspectChange, decided: Classification, description: str) -> Summary:
        return cls(
            classification=decided.kind.value, severity=decided.severity,
            rules_fired=list(decided.rules_fired), description=description,
            controller=ev.controller.id, tag=ev.tag.name,
            headline=rank(decided.severity, ev.change_kind.value),
        )

    def copy(self) -> Summary:
        return replace(self, rules_fired=list(self.rules_fired), moved_by={}, joined=set())

    def join(self, ev: SuspectChange, decided: Classification, description: str) -> bool:
        """Take one more event into the record; True when anything the record says moved."""
        signature = (decided.kind, decided.severity, decided.rules_fired, ev.change_kind)
        if signature in self.joined:
            return False
        self.joined.add(signature)
        before = (self.classification, self.severity, len(self.rules_fired), self.headline)
        kind = united_kind(self.classification, decided.kind.value)
        if kind != self.classification:
            self.classification = kind
            self.moved_by["classification"] = ev.event_id
        if SEVERITY_ORDER[decided.severity] > SEVERITY_ORDER[self.severity]:
            self.severity = decided.severity
            self.moved_by["severity"] = ev.event_id
        new_rules = [r for r in decided.rules_fired if r not in self.rules_fired]
        if new_rules:
            self.rules_fired.extend(new_rules)
            self.moved_by["rules_fired"] = ev.event_id
        event_rank = rank(decided.severity, ev.change_kind.value)
        if event_rank > self.headline:
            self.headline = event_rank
            self.description, self.controller, self.tag = description, ev.controller.id, \
                ev.tag.name
            self.moved_by["description"] = ev.event_id
        after = (self.classification, self.severity, len(self.rules_fired), self.headline)
        return after != before

    def changes(self, start: Summary) -> list[tuple[str, Any, Any, str]]:
        """The fields that differ from ``start``: (field, old, new, reason), trail order."""
        out: list[tuple[str, Any, Any, str]] = []
        pairs: list[tuple[str, Any, Any]] = [
            ("classification", start.classification, self.classification),
            ("severity", start.severity.value, self.severity.value),
            ("rules_fired", start.rules_fired, self.rules_fired),
            ("description", start.description, self.description),
        ]
        for name, old, new in pairs:
            if old != new:
                out.append((name, old, new, self._reason(name)))
        headline = "description"
        if (start.controller, start.tag) != (self.controller, self.tag):
            out.append(("headline", f"{start.controller}/{start.tag}",
                        f"{self.controller}/{self.tag}", self._reason(headline)))
        return out

    def _reason(self, name: str) -> str:
        event = self.moved_by.get(name, "?")
        return {
            "classification": f"escalated: evidence {event} concerns another function",
            "severity": f"escalated: evidence {event} is {self.severity.value}",
            "rules_fired": f"evidence {event} fired more rules",
            "description": f"escalated: evidence {event} is the most serious event so far",
        }[name]
