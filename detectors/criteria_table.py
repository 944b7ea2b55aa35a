"""The criteria as a decision table for a quality engineer: ``otwatch-classifier criteria explain``.

`decision_table` renders the criteria in Markdown: one table for the usual case (working hours,
an actor the protocol does not name, no burst, no integrity finding), with a column per
combination of critical to quality x controller validated; then, for each other circumstance,
only the rows it changes; then the rules and decisions themselves. The README's table is this
text for the shipped criteria (a test keeps them equal). `decision_json` is every combination of
the space with its decision, for machines.

Example::

    $ otwatch-classifier criteria explain --criteria config/criteria.yaml
    $ otwatch-classifier criteria explain --config config/classifier.yaml --json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent.contract import ChangeKind, TagKind, Verdict
from detectors.classification import ClassKind
from detectors.correlate import IntegrityKind
from detectors.criteria import Conditions, Criteria, load_criteria
from detectors.decision_space import (
    Decision,
    Point,
    decide_all,
    integrities_of,
    show_value,
    tag_kinds_of,
    verdicts_of,
)
from detectors.errors import OtwatchDetectorError

DEFAULT_CRITERIA = Path("config/criteria.yaml")

#: The usual case: working hours, no actor named (every Modbus change), no burst, no finding.
BASE: dict[str, Any] = {"off_hours": False, "unknown_actor": True, "burst": False,
                        "integrity": None}
#: (critical to quality, controller validated) per column.
COLUMNS = ((True, True), (True, False), (False, True), (False, False))
HEADER = ("CTQ tag, validated controller", "CTQ tag, not validated", "not CTQ, validated",
          "not CTQ, not validated")
#: The other circumstances, each against the usual case.
CIRCUMSTANCES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("the actor is known (named by OPC UA audit events and listed in known_actors)",
     {"unknown_actor": False}),
    ("the change is made outside working hours", {"off_hours": True}),
    ("the event is part of a burst across controllers", {"burst": True}),
    ("the gap is the classifier's finding of a gap in an agent's seq",
     {"integrity": IntegrityKind.SEQ_GAP}),
    ("the gap is the classifier's finding that an agent fell silent",
     {"integrity": IntegrityKind.AGENT_SILENCE}),
)
_KIND_WORDS = {
    ClassKind.JOINT: "joint", ClassKind.QUALITY_ONLY: "quality only",
    ClassKind.SECURITY_ONLY: "security only",
}

Row = tuple[str, str, tuple[str, ...]]  # change, verdicts, cells


def cell(decision: Decision) -> str:
    """One decision in words: ``joint, high (JQS-1, Q-1)`` or ``no record (N-1)``."""
    if not decision.rules:
        return f"no record ({', '.join(n.id for n in decision.no_record) or 'undecided'})"
    domains = {d for r in decision.rules for d in r.contributes}
    kind = (ClassKind.JOINT if len(domains) == 2 else
            ClassKind.QUALITY_ONLY if domains == {"quality"} else ClassKind.SECURITY_ONLY)
    order = ("low", "medium", "high", "critical")
    severity = max((r.severity.value for r in decision.rules), key=order.index)
    return f"{_KIND_WORDS[kind]}, {severity} ({', '.join(r.id for r in decision.rules)})"


def _words(value: object) -> str:
    return str(value).replace("_", " ")


def _rows(by_point: dict[Point, Decision], context: dict[str, Any],
          wanted: Callable[[ChangeKind, Verdict], bool]) -> list[Row]:
    """One row per set of verdicts with equal cells; kinds of change (and the tag kinds of an
    unwatched change or a gap) whose rows are all equal share their rows."""
    units: dict[tuple[tuple[str, tuple[str, ...]], ...], list[str]] = {}
    for change_kind in ChangeKind:
        verdicts = [v for v in verdicts_of(change_kind) if wanted(change_kind, v)]
        if not verdicts:
            continue
        by_tags: dict[tuple[tuple[str, tuple[str, ...]], ...], list[TagKind]] = {}
        for tag_kind in tag_kinds_of(change_kind):
            cells = [
                tuple(cell(by_point[_point(v, change_kind, tag_kind, ctq, val, context)])
                      for ctq, val in COLUMNS)
                for v in verdicts
            ]
            by_tags.setdefault(_merge_verdicts(verdicts, cells), []).append(tag_kind)
        for rows, tag_kinds in by_tags.items():
            label = _words(change_kind)
            if len(tag_kinds) < len(tag_kinds_of(change_kind)):
                label += f" ({', '.join(t.value for t in tag_kinds)} tag)"
            units.setdefault(rows, []).append(label)
    return [(", ".join(labels), verdicts, cells)
            for rows, labels in units.items() for verdicts, cells in rows]


def _merge_verdicts(verdicts: Sequence[Verdict], cells: Sequence[tuple[str, ...]]
                    ) -> tuple[tuple[str, tuple[str, ...]], ...]:
    grouped: dict[tuple[str, ...], list[Verdict]] = {}
    for verdict, row in zip(verdicts, cells, strict=True):
        grouped.setdefault(row, []).append(verdict)
    return tuple((", ".join(_words(v) for v in vs), row) for row, vs in grouped.items())


def _point(verdict: Verdict, change_kind: ChangeKind, tag_kind: TagKind, ctq: bool,
           validated: bool, context: dict[str, Any]) -> Point:
    return Point(verdict=verdict, change_kind=change_kind, tag_kind=tag_kind,
                 critical_to_quality=ctq, controller_validated=validated, **context)


def _possible(context: dict[str, Any]) -> Callable[[ChangeKind, Verdict], bool]:
    """Which rows a circumstance can occur in (a burst never with authorized, ...)."""
    def wanted(change_kind: ChangeKind, verdict: Verdict) -> bool:
        if context["burst"] and verdict is Verdict.AUTHORIZED:
            return False
        return context["integrity"] in integrities_of(change_kind)
    return wanted


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _conditions(when: Conditions) -> str:
    parts = []
    for name, value in when:
        if value is None:
            continue
        shown = (", ".join(show_value(v) for v in value) if isinstance(value, list)
                 else show_value(value))
        parts.append(f"{name}: {shown}")
    return "; ".join(parts) or "always"


def decision_table(criteria: Criteria) -> str:
    """The criteria's decision table in Markdown (what `explain` prints and the README shows)."""
    decisions = decide_all(criteria)
    by_point = {d.point: d for d in decisions}
    lines = [
        f"Criteria version {criteria.version}: {len(decisions)} combinations, each decided by "
        f"{len(criteria.rules)} rules and {len(criteria.no_record)} no-record decisions.",
        "",
        "The usual case: in working hours, an actor the protocol does not name (every Modbus "
        "change), not part of a burst, no integrity finding. A cell is the classification, "
        "its severity and the rules that decide it.",
        "",
    ]
    base = _rows(by_point, BASE, _possible(BASE))
    lines += _table(("change", "verdict", *HEADER), [(c, v, *cells) for c, v, cells in base])
    for words, change in CIRCUMSTANCES:
        context = {**BASE, **change}
        usual = {(c, v): cells for c, v, cells in _rows(by_point, BASE, _possible(context))}
        rows = [(c, v, *cells) for c, v, cells in _rows(by_point, context, _possible(context))
                if usual.get((c, v)) != cells]
        lines += ["", f"When {words}, these rows differ:" if rows else
                  f"When {words}: no row differs.", ""]
        lines += _table(("change", "verdict", *HEADER), rows) if rows else []
    lines += ["", "The rules and decisions:", ""]
    entries = [(r.id, ", ".join(r.contributes), r.severity.value, _conditions(r.when),
                " ".join(r.description.split())) for r in criteria.rules]
    entries += [(n.id, "no record", "", _conditions(n.when), " ".join(n.description.split()))
                for n in criteria.no_record]
    lines += _table(("id", "contributes", "severity", "when", "why"), entries)
    return "\n".join(lines) + "\n"


def decision_json(criteria: Criteria) -> dict[str, Any]:
    """Every combination of the space with its decision."""
    out = []
    for d in decide_all(criteria):
        entry: dict[str, Any] = {name: show_value(v) if v is None or isinstance(v, str)
                                 else v for name, v in d.point._asdict().items()}
        entry["decision"] = cell(d)
        entry["rules"] = [r.id for r in d.rules]
        entry["no_record"] = [n.id for n in d.no_record]
        out.append(entry)
    return {"version": criteria.version, "combinations": out}


def add_criteria_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``criteria explain``, added to the classifier's sub-commands."""
    parser = sub.add_parser("criteria", help="the joint criteria: print their decision table")
    commands = parser.add_subparsers(dest="criteria_command", required=True)
    explain = commands.add_parser(
        "explain", help="print the decision table: every combination and what decides it")
    explain.add_argument("--config", type=Path, help="classifier config: explain its criteria")
    explain.add_argument("--criteria", type=Path,
                         help=f"criteria file (default: {DEFAULT_CRITERIA})")
    explain.add_argument("--json", action="store_true", help="every combination, as JSON")


def run_criteria_command(args: argparse.Namespace) -> int:
    """Run ``criteria explain``; 0, or 2 with the error on stderr."""
    try:
        criteria = load_criteria(_criteria_path(args))
    except OtwatchDetectorError as exc:
        print(f"otwatch-classifier: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(decision_json(criteria), indent=1))
    else:
        print(decision_table(criteria), end="")
    return 0


def _criteria_path(args: argparse.Namespace) -> Path:
    if args.criteria is not None:
        return Path(args.criteria)
    if args.config is not None:
        from detectors.config import load_classifier_config

        return Path(load_classifier_config(str(args.config)).classifier.criteria)
    return DEFAULT_CRITERIA
