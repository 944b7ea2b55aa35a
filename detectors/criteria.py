"""The joint quality + security criteria: versioned rules over one event. Pure functions.

A rule fires when every condition it states holds for the event. What the fired rules
contribute decides the classification: quality and security → ``joint``; only one of
them → ``quality_only`` / ``security_only``; no rule → ``none``. A ``no_record`` decision states
on purpose that some events open nothing, and why. The criteria must decide every combination
of the decision space (`detectors.decision_space`) one way or the other: `load_criteria` refuses
a file that leaves one open. The file is versioned, and the version is recorded on every master
record.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, tzinfo
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.contract import ChangeKind, SuspectChange, TagKind, Verdict
from detectors.classification import (
    SEVERITY_ORDER,
    Classification,
    ClassKind,
    Decision,
    Severity,
    built_for,
    decision,
)
from detectors.correlate import (
    NO_CONTEXT,
    BurstSettings,
    EventContext,
    IntegrityKind,
    incident_key,
    per_instant,
)
from detectors.decision_space import Point, Test, check_decided, compile_conditions, holds, points
from detectors.errors import CriteriaError

Domain = Literal["quality", "security"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Conditions(_Strict):
    """Every condition given must hold; an omitted condition does not restrict.

    The keys are the dimensions of the decision space (`detectors.decision_space.Point`).
    """

    #: The agent's verdicts this applies to.
    verdict: list[Verdict] | None = None
    #: The kinds of change this applies to.
    change_kind: list[ChangeKind] | None = None
    #: The kinds of tag this applies to.
    tag_kind: list[TagKind] | None = None
    #: Only tags (not) critical to quality.
    critical_to_quality: bool | None = None
    #: Only (not) validated controllers.
    controller_validated: bool | None = None
    #: Only changes (not) outside the site calendar's working hours.
    off_hours: bool | None = None
    #: Only changes whose actor is (not) unknown (not in known_actors, or not revealed).
    unknown_actor: bool | None = None
    #: The event is part of a burst across controllers (see `criteria.burst`).
    burst: bool | None = None
    #: The event is a finding the classifier made itself (a seq gap or a silent agent), or
    #: ``none``: an event from an agent.
    integrity: list[IntegrityKind | Literal["none"]] | None = None


class Rule(_Strict):
    #: The rule's id, named in each record it opens.
    id: str = Field(min_length=1)
    #: What the rule is for, in words.
    description: str = Field(min_length=1)
    #: The conditions under which it fires.
    when: Conditions
    #: Which sides of the master record it opens: quality, security or both.
    contributes: list[Domain] = Field(min_length=1)
    #: The record's severity.
    severity: Severity = Severity.MEDIUM
    #: Text for the quality side of the record.
    quality_impact: str = ""
    #: Text for the security side of the record.
    security_impact: str = ""
    #: MITRE ATT&CK for ICS technique, e.g. T0836 (Modify Parameter).
    attack_technique: str | None = Field(default=None, pattern=r"^T\d{4}(\.\d{3})?$")


class NoRecord(_Strict):
    """A deliberate decision that the events it covers open no record; the description says why."""

    #: The decision's id.
    id: str = Field(min_length=1)
    #: Why these events open no record.
    description: str = Field(min_length=1)
    #: The events it covers.
    when: Conditions


class SiteCalendar(_Strict):
    """The site's working hours: a change outside them is ``off_hours``."""

    #: The site's time zone (IANA name, e.g. Europe/Berlin) for working hours.
    timezone: str = "UTC"
    #: Days with working hours.
    working_days: list[Weekday] = Field(default_factory=lambda: list(_WEEKDAYS[:5]))
    #: Start of working hours, local time.
    working_hours_start: time = time(6, 0)
    #: End of working hours, local time (changes outside are off hours).
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
    """When events join an open record instead of opening a new one."""

    #: Events with the same incident key (`detectors.correlate.incident_key`) detected within
    #: this many seconds of the open record's last event join that record.
    window_s: float = Field(default=900.0, gt=0)


class Criteria(_Strict):
    #: The criteria's version, recorded with each classification.
    version: str = Field(min_length=1)
    calendar: SiteCalendar = Field(default_factory=SiteCalendar)
    correlation: CorrelationSettings = Field(default_factory=CorrelationSettings)
    burst: BurstSettings = Field(default_factory=BurstSettings)
    #: Actors treated as known (OPC UA ClientUserId); others count as unknown actors.
    known_actors: list[str] = Field(default_factory=list)
    #: Rules, first match wins per side (see the criteria's own file).
    rules: list[Rule] = Field(min_length=1)
    #: Combinations that open no record on purpose (every other one must fire a rule).
    no_record: list[NoRecord] = Field(default_factory=list)


def load_criteria(path: Path) -> Criteria:
    """Read and validate a criteria file; errors name the file, the key and the fix.

    The criteria must decide every combination of the decision space: a rule fires, or a
    ``no_record`` decision covers it (never both).
    """
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
    ids = [r.id for r in criteria.rules] + [n.id for n in criteria.no_record]
    if len(ids) != len(set(ids)):
        raise CriteriaError(
            f"{path}: rules, no_record: duplicate id; fix: give every rule and decision its own id"
        )
    check_decided(criteria, str(path))
    return criteria


@dataclass(frozen=True)
class _Verdict:
    """What a set of fired rules decides, apart from the event's own description and key."""

    #: The fields of each classification it makes (`detectors.classification.decision`).
    fields: Decision
    #: How the record's description ends: ``. `` and the first fired rule's description, or
    #: nothing when no rule fired.
    ending: str


@dataclass
class _Plan:
    """The criteria compiled once into a table: decision-space point -> what it decides.

    ``classify`` runs for every event: it only builds the event's point and looks it up. The
    table holds every point of the space; a point outside it (an event the pipeline does not
    make) is decided by walking the rules once and then kept too.
    """

    rules: tuple[tuple[Rule, tuple[Test, ...]], ...]
    #: The criteria's version, recorded with each classification.
    version: str
    #: Whether an instant is off hours (`_off_hours`, `per_instant`); None when no rule asks.
    off_hours: Callable[[datetime], bool] | None
    known_actors: frozenset[str] | None
    table: dict[tuple[object, ...], _Verdict] = field(default_factory=dict)
    by_rules: dict[tuple[str, ...], _Verdict] = field(default_factory=dict)

    def point_of(self, event: SuspectChange, context: EventContext) -> tuple[object, ...]:
        """The event's point; a dimension no rule looks at is not computed (a fixed value)."""
        off_hours = False if self.off_hours is None else self.off_hours(event.occurred_at)
        known = self.known_actors
        unknown = known is None or event.actor is None or event.actor not in known
        tag = event.tag
        return (
            event.verdict, event.change_kind, tag.kind, tag.critical_to_quality,
            event.controller.validated, off_hours, unknown, context.in_burst, context.integrity,
        )

    def decide(self, point: tuple[object, ...]) -> _Verdict:
        fired = tuple(rule for rule, tests in self.rules if holds(tests, point))
        ids = tuple(r.id for r in fired)
        decided = self.by_rules.get(ids)
        if decided is None:  # few distinct rule sets fire: decide each once
            decided = self.by_rules[ids] = _decide(fired, self.version)
        self.table[point] = decided
        return decided


def _uses(criteria: Criteria, key: str) -> bool:
    whens = [r.when for r in criteria.rules] + [n.when for n in criteria.no_record]
    return any(getattr(w, key) is not None for w in whens)


def _off_hours(calendar: SiteCalendar) -> Callable[[datetime, tzinfo | None, int], bool]:
    """`SiteCalendar.is_off_hours`, once per instant: the events of one poll share their time,
    and converting it to the site's zone costs more than a cache lookup. The zone and fold are
    part of the key (attributes: cheaper than ``utcoffset()``): datetimes of one zone that
    differ only in ``fold`` are equal, yet an hour apart."""

    @functools.lru_cache(maxsize=4096)
    def off_hours(moment: datetime, zone: tzinfo | None, fold: int) -> bool:
        return calendar.is_off_hours(moment)

    return off_hours


def _build_plan(criteria: Criteria) -> _Plan:
    plan = _Plan(
        rules=tuple((r, compile_conditions(r.when)) for r in criteria.rules),
        version=criteria.version,
        off_hours=(
            per_instant(_off_hours(criteria.calendar)) if _uses(criteria, "off_hours") else None
        ),
        known_actors=(
            frozenset(criteria.known_actors) if _uses(criteria, "unknown_actor") else None
        ),
    )
    for point in points():
        plan.decide(point)
    return plan


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


def _decide(fired: tuple[Rule, ...], version: str) -> _Verdict:
    domains = {d for r in fired for d in r.contributes}
    if {"quality", "security"} <= domains:
        kind = ClassKind.JOINT
    elif domains == {"quality"}:
        kind = ClassKind.QUALITY_ONLY
    elif domains == {"security"}:
        kind = ClassKind.SECURITY_ONLY
    else:
        kind = ClassKind.NONE
    fields = decision(
        kind=kind,
        severity=max(
            (r.severity for r in fired), key=SEVERITY_ORDER.__getitem__, default=Severity.LOW
        ),
        rules_fired=tuple(r.id for r in fired),
        criteria_version=version,
        quality_impact="; ".join(r.quality_impact for r in fired if r.quality_impact),
        security_impact="; ".join(r.security_impact for r in fired if r.security_impact),
        attack_techniques=tuple(sorted({r.attack_technique for r in fired if r.attack_technique})),
    )
    explanation = fired[0].description if fired else ""
    return _Verdict(fields, f". {explanation}" if explanation else "")


def classify(
    event: SuspectChange, criteria: Criteria, context: EventContext = NO_CONTEXT
) -> Classification:
    """Apply every rule to one event (in its context) and combine what the fired rules add."""
    return _classified(_plan(criteria), event, context)


def classify_all(
    placed: Iterable[tuple[SuspectChange, EventContext]], criteria: Criteria
) -> list[Classification]:
    """`classify` for each event of a batch, in order (the plan looked up once per batch)."""
    plan = _plan(criteria)
    return [_classified(plan, event, context) for event, context in placed]


def classify_placed(
    placed: Iterable[tuple[SuspectChange, EventContext, object]], criteria: Criteria
) -> list[tuple[SuspectChange, Classification]]:
    """Each (event, context, token) of a batch as (event, its classification), in order: what
    the recorder records, in one pass (no list of pairs to classify, then another to zip)."""
    plan = _plan(criteria)
    return [(event, _classified(plan, event, context)) for event, context, _ in placed]


def _classified(plan: _Plan, event: SuspectChange, context: EventContext) -> Classification:
    point = plan.point_of(event, context)
    decided = plan.table.get(point)
    if decided is None:
        decided = plan.decide(point)
    # Every value comes from validated criteria and a validated event, so the model is built
    # without validating it again (`built_for`: most of the cost of classifying).
    return built_for(
        decided.fields, _describe(event, decided.ending),
        context.correlation_key or incident_key(event), context.line_key or "",
    )


#: Each kind of change in words, and each verdict's value, looked up rather than formatted
#: per event (``Enum.value`` is a slow descriptor).
_CHANGE_WORDS = {kind: kind.value.replace("_", " ") for kind in ChangeKind}
_VERDICT_TEXT = {verdict: verdict.value for verdict in Verdict}


def _describe(event: SuspectChange, ending: str) -> str:
    """What happened, in words, then why it matters (``ending``: `_Verdict.ending`); one
    f-string, so the long text is written once."""
    tag, reason = event.tag, event.verdict_reason
    return (
        f"{_CHANGE_WORDS[event.change_kind]} on {event.controller.id}/{tag.name}: "
        f"{event.old_value!r} -> {event.new_value!r}{' ' + tag.unit if tag.unit else ''} "
        f"({_VERDICT_TEXT[event.verdict]}{': ' + reason if reason else ''}){ending}"
    )


__all__ = [
    "Conditions",
    "Criteria",
    "NoRecord",
    "Point",
    "Rule",
    "SiteCalendar",
    "classify",
    "classify_all",
    "classify_placed",
    "load_criteria",
]
