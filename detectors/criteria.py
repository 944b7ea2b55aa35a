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

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.contract import ChangeKind, SuspectChange, TagKind, Verdict
from detectors.classification import SEVERITY_ORDER, Classification, ClassKind, Severity
from detectors.correlate import NO_CONTEXT, BurstSettings, EventContext, IntegrityKind, incident_key
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
        local = at.astimezone(_zone(self.timezone))
        if _WEEKDAYS[local.weekday()] not in self.working_days:
            return True
        return not (self.working_hours_start <= local.time() < self.working_hours_end)


@functools.lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    """ZoneInfo by name, looked up once (the constructor is slow even with its own cache)."""
    return ZoneInfo(name)


class CorrelationSettings(_Strict):
    #: Events with the same incident key (`detectors.correlate.incident_key`) detected within
    #: this many seconds of the open record's last event join that record.
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


Check = Callable[[SuspectChange, EventContext], bool]


@dataclass(frozen=True)
class _CompiledRule:
    rule: Rule
    checks: tuple[Check, ...]

    def fires(self, event: SuspectChange, context: EventContext) -> bool:
        for check in self.checks:  # a plain loop: all() over a generator costs twice as much
            if not check(event, context):
                return False
        return True


@dataclass(frozen=True)
class _Verdict:
    """What a set of fired rules decides, apart from the event's own description and key."""

    kind: ClassKind
    severity: Severity
    rules_fired: tuple[str, ...]
    quality_impact: str
    security_impact: str
    attack_techniques: tuple[str, ...]


@dataclass
class _Plan:
    """The criteria compiled once: per verdict, the rules that can fire, as closures.

    ``classify`` runs for every event; re-reading each rule's optional conditions (and building
    a ZoneInfo for the off-hours check) per event was a fifth of the classifier's time.
    """

    by_verdict: dict[Verdict, tuple[_CompiledRule, ...]]
    decided: dict[tuple[str, ...], _Verdict] = field(default_factory=dict)


def _compile(cond: Conditions, criteria: Criteria) -> tuple[Check, ...]:
    """One closure per stated condition (the verdict is settled by `_Plan.by_verdict`)."""
    checks: list[Check] = []
    if cond.burst is not None:
        want_burst = cond.burst
        checks.append(lambda _ev, ctx: ctx.in_burst is want_burst)
    if cond.integrity is not None:
        integrity = frozenset(cond.integrity)
        checks.append(lambda _ev, ctx: ctx.integrity in integrity)
    if cond.change_kind is not None:
        change_kinds = frozenset(cond.change_kind)
        checks.append(lambda ev, _ctx: ev.change_kind in change_kinds)
    if cond.tag_kind is not None:
        tag_kinds = frozenset(cond.tag_kind)
        checks.append(lambda ev, _ctx: ev.tag.kind in tag_kinds)
    if cond.critical_to_quality is not None:
        want_ctq = cond.critical_to_quality
        checks.append(lambda ev, _ctx: ev.tag.critical_to_quality is want_ctq)
    if cond.controller_validated is not None:
        want_validated = cond.controller_validated
        checks.append(lambda ev, _ctx: ev.controller.validated is want_validated)
    if cond.off_hours is not None:
        calendar, want_off = criteria.calendar, cond.off_hours
        checks.append(lambda ev, _ctx: calendar.is_off_hours(ev.occurred_at) is want_off)
    if cond.unknown_actor is not None:
        known, want_unknown = frozenset(criteria.known_actors), cond.unknown_actor
        checks.append(lambda ev, _ctx: (ev.actor is None or ev.actor not in known) is want_unknown)
    return tuple(checks)


def _build_plan(criteria: Criteria) -> _Plan:
    compiled = [_CompiledRule(r, _compile(r.when, criteria)) for r in criteria.rules]
    return _Plan({
        verdict: tuple(c for c in compiled
                       if c.rule.when.verdict is None or verdict in c.rule.when.verdict)
        for verdict in Verdict
    })


#: Plans by criteria object (kept alive here, so an id is never reused while cached).
_PLANS: dict[int, tuple[Criteria, _Plan]] = {}


def _plan(criteria: Criteria) -> _Plan:
    cached = _PLANS.get(id(criteria))
    if cached is not None and cached[0] is criteria:
        return cached[1]
    if len(_PLANS) >= 64:  # a long-lived service has one criteria; tests build many
        _PLANS.clear()
    plan = _build_plan(criteria)
    _PLANS[id(criteria)] = (criteria, plan)
    return plan


def _decide(fired: list[Rule]) -> _Verdict:
    domains = {d for r in fired for d in r.contributes}
    if {"quality", "security"} <= domains:
        kind = ClassKind.JOINT
    elif domains == {"quality"}:
        kind = ClassKind.QUALITY_ONLY
    elif domains == {"security"}:
        kind = ClassKind.SECURITY_ONLY
    else:
        kind = ClassKind.NONE
    return _Verdict(
        kind=kind,
        severity=max(
            (r.severity for r in fired), key=SEVERITY_ORDER.__getitem__, default=Severity.LOW
        ),
        rules_fired=tuple(r.id for r in fired),
        quality_impact="; ".join(r.quality_impact for r in fired if r.quality_impact),
        security_impact="; ".join(r.security_impact for r in fired if r.security_impact),
        attack_techniques=tuple(sorted({r.attack_technique for r in fired if r.attack_technique})),
    )


def classify(
    event: SuspectChange, criteria: Criteria, context: EventContext = NO_CONTEXT
) -> Classification:
    """Apply every rule to one event (in its context) and combine what the fired rules add."""
    plan = _plan(criteria)
    fired = [c.rule for c in plan.by_verdict[event.verdict] if c.fires(event, context)]
    ids = tuple(r.id for r in fired)
    decided = plan.decided.get(ids)
    if decided is None:  # few distinct rule sets fire: decide each once
        decided = plan.decided[ids] = _decide(fired)
    # Every value below comes from validated criteria and a validated event, so the model is
    # built without validating it again (a third of the cost of classifying).
    return Classification.model_construct(
        kind=decided.kind,
        severity=decided.severity,
        rules_fired=decided.rules_fired,
        criteria_version=criteria.version,
        quality_impact=decided.quality_impact,
        security_impact=decided.security_impact,
        description=_describe(event, fired),
        correlation_key=context.correlation_key or incident_key(event),
        attack_techniques=decided.attack_techniques,
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
