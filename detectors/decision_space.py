"""The decision space of the joint criteria: every kind of event the classifier can be asked about.

A point of the space is one combination of what the criteria can look at::

    verdict x change kind x tag kind x critical to quality x controller validated
            x off hours x unknown actor x burst x integrity finding

The space holds the combinations the pipeline can produce, not every product of the values:

* a change kind comes from its tag's kind (a setpoint change from a setpoint tag, a recipe switch
  or edit from a recipe, ...); a change made while unwatched and a monitoring gap can be on any tag;
* a monitoring gap is always ``unapproved`` (nobody approves a gap), and only a monitoring gap can
  carry an integrity finding (a gap in an agent's ``seq``, a silent agent);
* an authorized change is never part of a burst (the burst correlator passes it through).

The criteria must decide every point on purpose: a rule fires there, or a ``no_record`` decision
says why it opens nothing, never both. `check_decided` refuses criteria that leave a point open
or decide one both ways, naming the combination and the fix. Pure: no clock, no I/O.

Example::

    >>> holes = undecided(criteria)        # [] for criteria that decide everything
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from agent.contract import ChangeKind, TagKind, Verdict
from detectors.correlate import IntegrityKind
from detectors.errors import CriteriaError

if TYPE_CHECKING:
    from detectors.criteria import Conditions, Criteria, NoRecord, Rule


class Point(NamedTuple):
    """One combination of the decision space (field names are the criteria's condition keys)."""

    verdict: Verdict
    change_kind: ChangeKind
    tag_kind: TagKind
    critical_to_quality: bool
    controller_validated: bool
    off_hours: bool
    unknown_actor: bool
    burst: bool
    integrity: IntegrityKind | None


#: The tag kinds each kind of change comes from (the agent's detection); a kind not listed here
#: (a new one) may come from any tag, so that the check asks for a decision on all of them.
TAG_KINDS_OF: dict[ChangeKind, tuple[TagKind, ...]] = {
    ChangeKind.SETPOINT_CHANGE: (TagKind.SETPOINT,),
    ChangeKind.RECIPE_SWITCH: (TagKind.RECIPE,),
    ChangeKind.RECIPE_EDIT: (TagKind.RECIPE,),
    ChangeKind.PROGRAM_CHANGE: (TagKind.PROGRAM,),
    ChangeKind.MODE_CHANGE: (TagKind.MODE,),
}
_BOOLS = (False, True)
#: Measurements are context in every event of their controller, never a change of their own
#: (DESIGN: "measurements are context, never changes"), so no point of the space has one.
_CHANGING_TAG_KINDS = tuple(kind for kind in TagKind if kind is not TagKind.MEASUREMENT)


def tag_kinds_of(change_kind: ChangeKind) -> tuple[TagKind, ...]:
    return TAG_KINDS_OF.get(change_kind, _CHANGING_TAG_KINDS)


def verdicts_of(change_kind: ChangeKind) -> tuple[Verdict, ...]:
    """A monitoring gap is always unapproved; a change can have any verdict."""
    if change_kind is ChangeKind.MONITORING_GAP:
        return (Verdict.UNAPPROVED,)
    return tuple(Verdict)


def integrities_of(change_kind: ChangeKind) -> tuple[IntegrityKind | None, ...]:
    if change_kind is ChangeKind.MONITORING_GAP:
        return (None, *IntegrityKind)
    return (None,)


def bursts_of(verdict: Verdict) -> tuple[bool, ...]:
    return (False,) if verdict is Verdict.AUTHORIZED else _BOOLS


def points() -> Iterator[Point]:
    """Every point of the space, in a stable order."""
    for change_kind in ChangeKind:
        for tag_kind in tag_kinds_of(change_kind):
            for verdict in verdicts_of(change_kind):
                for ctq, validated, off, unknown, burst, integrity in itertools.product(
                    _BOOLS, _BOOLS, _BOOLS, _BOOLS, bursts_of(verdict),
                    integrities_of(change_kind),
                ):
                    yield Point(verdict, change_kind, tag_kind, ctq, validated, off, unknown,
                                burst, integrity)


#: One compiled condition: the point's field at ``index`` must be one of ``allowed``.
Test = tuple[int, frozenset[object]]


def compile_conditions(cond: Conditions) -> tuple[Test, ...]:
    """A rule's ``when`` as (field index, allowed values) pairs; an omitted key allows anything."""
    tests: list[Test] = []
    for name, value in cond:
        if value is None:
            continue
        if name == "integrity":
            allowed = frozenset(None if v == "none" else IntegrityKind(v) for v in value)
        elif isinstance(value, list):
            allowed = frozenset(value)
        else:
            allowed = frozenset({value})
        tests.append((Point._fields.index(name), allowed))
    return tuple(tests)


def holds(tests: Sequence[Test], point: tuple[object, ...]) -> bool:
    for index, allowed in tests:  # a plain loop: all() over a generator costs twice as much
        if point[index] not in allowed:
            return False
    return True


@dataclass(frozen=True)
class Decision:
    """What the criteria say about one point: the rules that fire, the no-record decisions."""

    point: Point
    rules: tuple[Rule, ...]
    no_record: tuple[NoRecord, ...]

    @property
    def decided(self) -> bool:
        return bool(self.rules) != bool(self.no_record)


def decide_all(criteria: Criteria) -> list[Decision]:
    """The decision at every point of the space."""
    rules = [(r, compile_conditions(r.when)) for r in criteria.rules]
    quiet = [(n, compile_conditions(n.when)) for n in criteria.no_record]
    return [
        Decision(
            point,
            tuple(r for r, tests in rules if holds(tests, point)),
            tuple(n for n, tests in quiet if holds(tests, point)),
        )
        for point in points()
    ]


def undecided(criteria: Criteria) -> list[Point]:
    """Points that no rule and no no-record decision covers."""
    return [d.point for d in decide_all(criteria) if not d.rules and not d.no_record]


def contradictions(criteria: Criteria) -> list[Decision]:
    """Points where a rule fires although a no-record decision says they open nothing."""
    return [d for d in decide_all(criteria) if d.rules and d.no_record]


def show_value(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def describe_points(found: Iterable[Point]) -> str:
    """What a set of points has in common, and one full example: for an error message."""
    found = list(found)
    common = [
        f"{name}={show_value(values.pop())}"
        for name in Point._fields
        if len(values := {getattr(p, name) for p in found}) == 1
    ]
    first = zip(Point._fields, found[0], strict=True)
    example = ", ".join(f"{name}={show_value(value)}" for name, value in first)
    where = f" (all with {', '.join(common)})" if common else ""
    return f"{len(found)} combination(s){where}, e.g. {example}"


def check_decided(criteria: Criteria, source: str) -> None:
    """Raise `CriteriaError` if a point is left open or decided both ways; names the fix."""
    decisions = decide_all(criteria)
    holes = [d.point for d in decisions if not d.rules and not d.no_record]
    if holes:
        raise CriteriaError(
            f"{source}: no rule and no no_record decision covers {describe_points(holes)}; "
            "fix: add a rule whose `when` holds there (a finding), or a `no_record` decision "
            "saying why such a change opens nothing (see `otwatch-classifier criteria explain`)"
        )
    both = [d for d in decisions if d.rules and d.no_record]
    if both:
        first = both[0]
        raise CriteriaError(
            f"{source}: no_record {first.no_record[0].id} and rule {first.rules[0].id} both "
            f"decide {describe_points(d.point for d in both)}; fix: narrow the `when` of one "
            "of them, a combination either opens a record or it does not"
        )
