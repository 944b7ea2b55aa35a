"""The joint quality + security criteria: versioned rules over one event. Pure functions.

A rule fires when every condition it states holds for the event. What the fired rules
contribute decides the classification: quality and security → ``joint``; only one of
them → ``quality_only`` / ``security_only``; no rule → ``none``. The criteria file is
versioned, and the version is recorded on every master record.

Example::

    >>> criteria = load_criteria(Path("config/criteria.yaml"))
    >>> classify(event, criteria).kind
    <ClassKind.JOINT: 'joint'>
    >>> classify(event, criteria, EventContext(burst_controllers=3, correlation_key="plant-1/a"))

What a single event cannot show (a burst across controllers, a gap in an agent's ``seq``, a
silent agent) comes in as an `EventContext` built by the small state in `detectors.correlate`
and `detectors.integrity`; ``classify`` itself stays a pure function of its arguments.
"""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.events import ChangeKind, SuspectChange, TagKind, Verdict
from detectors.classification import SEVERITY_ORDER, Classification, ClassKind, Severity
from detectors.correlate import NO_CONTEXT, BurstSettings, EventContext, IntegrityKind
from detectors.errors import CriteriaError

Domain = Literal["quality", "security"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Conditions(_Strict):
    """Every condition given must hold; an omitted condition does not restrict."""

    verdict: list[Verdict] | None = None
    change_kind: list[ChangeKind] | None = None
    tag_kind: list[TagKind] | None = None
    critical_to_quality: bool | None = None
    controller_validated: bool | None = None
    off_hours: bool | None = None
    unknown_actor: bool | None = None
    #: The event is part of a burst across controllers (see `criteria.burst`).
    burst: bool | None = None
    #: The event is a finding the classifier made itself: a seq gap or a silent agent.
    integrity: list[IntegrityKind] | None = None


class Rule(_Strict):
    id: str = Field(min_length=1)
    description: str = Field(min_length=1)
    when: Conditions
    contributes: list[Domain] = Field(min_length=1)
    severity: Severity = Severity.MEDIUM
    quality_impact: str = ""
    security_impact: str = ""
    #: MITRE ATT&CK for ICS technique, e.g. T0836 (Modify Parameter).
    attack_technique: str | None = Field(default=None, pattern=r"^T\d{4}(\.\d{3})?$")


class SiteCalendar(_Strict):
    timezone: str = "UTC"
    working_days: list[Weekday] = Field(default_factory=lambda: list(_WEEKDAYS[:5]))
    working_hours_start: time = time(6, 0)
    working_hours_end: time = time(22, 0)

    def is_off_hours(self, at: datetime) -> bool:
        local = at.astimezone(ZoneInfo(self.timezone))
        if _WEEKDAYS[local.weekday()] not in self.working_days:
            return True
        return not (self.working_hours_start <= local.time() < self.working_hours_end)


class CorrelationSettings(_Strict):
    #: Events with the same key within this window join the open record.
    window_s: float = Field(default=900.0, gt=0)


class Criteria(_Strict):
    version: str = Field(min_length=1)
    calendar: SiteCalendar = Field(default_factory=SiteCalendar)
    correlation: CorrelationSettings = Field(default_factory=CorrelationSettings)
    burst: BurstSettings = Field(default_factory=BurstSettings)
    #: Actors treated as known (OPC UA ClientUserId); others count as unknown actors.
    known_actors: list[str] = Field(default_factory=list)
    rules: list[Rule] = Field(min_length=1)


def load_criteria(path: Path) -> Criteria:
    """Read and validate a criteria file; errors name the file, the key and the fix."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CriteriaError(f"{path}: cannot read criteria ({exc}); fix: check the file") from None
    try:
        criteria = Criteria.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}; fix: correct the value"
            for e in exc.errors(include_url=False)
        ]
        raise CriteriaError("\n".join(lines)) from None
    ids = [r.id for r in criteria.rules]
    if len(ids) != len(set(ids)):
        raise CriteriaError(f"{path}: rules: duplicate rule id; fix: give every rule its own id")
    return criteria


def _holds(
    cond: Conditions, event: SuspectChange, criteria: Criteria, context: EventContext
) -> bool:
    checks: list[bool] = []
    if cond.burst is not None:
        checks.append(context.in_burst is cond.burst)
    if cond.integrity is not None:
        checks.append(context.integrity in cond.integrity)
    if cond.verdict is not None:
        checks.append(event.verdict in cond.verdict)
    if cond.change_kind is not None:
        checks.append(event.change_kind in cond.change_kind)
    if cond.tag_kind is not None:
        checks.append(event.tag.kind in cond.tag_kind)
    if cond.critical_to_quality is not None:
        checks.append(event.tag.critical_to_quality is cond.critical_to_quality)
    if cond.controller_validated is not None:
        checks.append(event.controller.validated is cond.controller_validated)
    if cond.off_hours is not None:
        checks.append(criteria.calendar.is_off_hours(event.occurred_at) is cond.off_hours)
    if cond.unknown_actor is not None:
        unknown = event.actor is None or event.actor not in criteria.known_actors
        checks.append(unknown is cond.unknown_actor)
    return all(checks)


def correlation_key(event: SuspectChange) -> str:
    """The events of one controller belong to one incident while its record is open."""
    return f"{event.site}/{event.controller.id}"


def classify(
    event: SuspectChange, criteria: Criteria, context: EventContext = NO_CONTEXT
) -> Classification:
    """Apply every rule to one event (in its context) and combine what the fired rules add."""
    fired = [r for r in criteria.rules if _holds(r.when, event, criteria, context)]
    domains = {d for r in fired for d in r.contributes}
    if {"quality", "security"} <= domains:
        kind = ClassKind.JOINT
    elif domains == {"quality"}:
        kind = ClassKind.QUALITY_ONLY
    elif domains == {"security"}:
        kind = ClassKind.SECURITY_ONLY
    else:
        kind = ClassKind.NONE
    severity = max(
        (r.severity for r in fired), key=SEVERITY_ORDER.__getitem__, default=Severity.LOW
    )
    return Classification(
        kind=kind,
        severity=severity,
        rules_fired=tuple(r.id for r in fired),
        criteria_version=criteria.version,
        quality_impact="; ".join(r.quality_impact for r in fired if r.quality_impact),
        security_impact="; ".join(r.security_impact for r in fired if r.security_impact),
        description=_describe(event, fired),
        correlation_key=context.correlation_key or correlation_key(event),
        attack_techniques=tuple(sorted({r.attack_technique for r in fired if r.attack_technique})),
    )


def _describe(event: SuspectChange, fired: list[Rule]) -> str:
    unit = f" {event.tag.unit}" if event.tag.unit else ""
    what = (
        f"{event.change_kind.value.replace('_', ' ')} on {event.controller.id}/{event.tag.name}: "
        f"{event.old_value!r} -> {event.new_value!r}{unit} ({event.verdict.value}"
        f"{': ' + event.verdict_reason if event.verdict_reason else ''})"
    )
    if not fired:
        return what
    return f"{what}. {fired[0].description}"
