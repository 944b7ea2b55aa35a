"""The joint procedure's steps on the command line: plain text and flags, one sub-command per
workflow command, ``--help`` naming each field (the same fields as the API bodies and the
models in `detectors.records.joint`). `records_cli` signs in and runs what these build.

    otwatch-records --user qa.tech contribute-impact NC-2026-000001 --function quality \\
        --assessment "LOT-7 may be out of spec" --severity major --likelihood possible \\
        --signed-off --reason "quality view"
    otwatch-records --user soc.kim rca NC-2026-000001 --security-found no \\
        --security-statement "no account or network misuse found" --reason "RCA"
    otwatch-records --user qa.lee notify NC-2026-000001 --audience regulator --notify no \\
        --rationale "no product released" --reason "decided"
"""

from __future__ import annotations

import argparse
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from detectors.classification import Severity
from detectors.records import (
    ActionStatus,
    AddCapaAction,
    AssessImpact,
    AssignLeads,
    AttachFile,
    Audience,
    CapaAction,
    CapaType,
    CauseDomain,
    CheckEffectiveness,
    Command,
    ContainmentDecision,
    ContributeImpact,
    DecideNotification,
    DecisionKind,
    DecisionStatus,
    Domain,
    EvidenceChecklist,
    FishboneCategory,
    ManualReport,
    MoveCapaDue,
    NotificationDecision,
    OwningSystem,
    PlaceHold,
    Priority,
    RecordDecision,
    RecordRootCause,
    ReleaseHold,
    RiskRating,
    SecurityActionKind,
    SecurityFinding,
    SetContainment,
    SystemInScope,
    UpdateCapaAction,
    UpdateDecision,
    WhyAnswer,
)

#: The sub-commands that write (each signs in first).
STEP_WRITES = (
    "report", "leads", "contribute-impact", "impact", "notify", "hold", "release", "decide",
    "decision-status", "containment", "rca", "capa-add", "capa-update", "move-due",
    "check-effectiveness", "attach", "download",
)


class StepArgError(ValueError):
    """A flag's value does not parse; the message names the flag and the fix."""


def _values(kind: Any) -> list[str]:
    return [member.value for member in kind]


def _yes_no(text: str) -> bool:
    if text.lower() in ("yes", "y", "true"):
        return True
    if text.lower() in ("no", "n", "false"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r}: answer yes or no")


def _when(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time; use ISO 8601 with an offset, e.g. "
            "2026-03-02T08:00:00+00:00") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: add the UTC offset, e.g. +00:00")
    return moment


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; use YYYY-MM-DD") from None


def _record(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", help="record id, e.g. NC-2026-000001")
    p.add_argument("--reason", required=True, help="why (kept in the audit trail)")


def add_step_commands(sub: Any) -> None:
    """Add the step sub-commands (and the read-only ``look-back``) to ``otwatch-records``."""
    p = sub.add_parser("report", help="report a suspected joint nonconformity by hand")
    p.add_argument("--controller", required=True, help="the controller's id")
    p.add_argument("--tag", required=True, help="the setpoint, recipe or program concerned")
    p.add_argument("--site", required=True)
    p.add_argument("--line", required=True)
    p.add_argument("--description", required=True, help="what was seen")
    p.add_argument("--severity", choices=_values(Severity), default="medium")
    p.add_argument("--occurred-at", type=_when, help="when (ISO 8601; default: now)")
    p.add_argument("--quality-impact", default="", help="the impact seen on quality")
    p.add_argument("--security-impact", default="", help="the impact seen on security")
    p.add_argument("--reason", required=True, help="why it is reported")
    p = sub.add_parser("leads", help="name the lead (quality) and co-lead (security)")
    _record(p)
    p.add_argument("--lead", required=True, help="user id holding quality")
    p.add_argument("--co-lead", required=True, help="user id holding security")
    _impact_commands(sub)
    _containment_commands(sub)
    _rca_command(sub)
    _capa_commands(sub)
    p = sub.add_parser("look-back", help="the look-back start otwatch proposes (read only)")
    p.add_argument("id")


def _impact_commands(sub: Any) -> None:
    p = sub.add_parser("contribute-impact", help="your function's part of the joint impact "
                       "assessment (you are its author)")
    _record(p)
    p.add_argument("--function", required=True, help="quality, operations or security")
    p.add_argument("--assessment", default="", help="product/customer impact as you see it")
    p.add_argument("--risk", default="", help="risks in words")
    p.add_argument("--severity", help="a severity row of the configured risk matrix")
    p.add_argument("--likelihood", help="a likelihood column of the risk matrix")
    p.add_argument("--signed-off", action="store_true", help="signed off by your function")
    p = sub.add_parser("impact", help="the impact summary (only the flags given change)")
    _record(p)
    p.add_argument("--product-impact", help="product and patient/customer impact")
    p.add_argument("--data-integrity", help="data integrity impact")
    p.add_argument("--look-back-from", type=_when,
                   help="data may be untrustworthy from here (see look-back)")
    p.add_argument("--look-back-basis", help="what the start rests on")
    p.add_argument("--system", action="append", metavar="NAME[:validated][:qualified]",
                   help="a system in scope (repeat); e.g. 'press-01 PLC:validated'")
    p.add_argument("--containment-risk", help="the risk containment itself creates")
    p = sub.add_parser("notify", help="decide whether an audience is notified")
    _record(p)
    p.add_argument("--audience", required=True, choices=_values(Audience))
    p.add_argument("--notify", required=True, type=_yes_no, help="yes or no")
    p.add_argument("--rationale", required=True, help="why (not)")
    p.add_argument("--notified-to", default="", help="who was notified (with --notify yes)")
    p.add_argument("--notified-at", type=_when, help="when (with --notify yes)")


def _containment_commands(sub: Any) -> None:
    for name, what in (("hold", "hold a lot"), ("release", "release a lot's hold")):
        p = sub.add_parser(name, help=what)
        _record(p)
        p.add_argument("lot", help="the lot id")
    p = sub.add_parser("decide", help="a containment decision: release freeze, security "
                       "action, trade-off, evidence preservation")
    _record(p)
    p.add_argument("--kind", required=True, choices=_values(DecisionKind))
    p.add_argument("--status", choices=_values(DecisionStatus), default="proposed")
    p.add_argument("--owner", default="", help="user id who owns it")
    p.add_argument("--note", default="")
    p.add_argument("--action", choices=_values(SecurityActionKind),
                   help="a security action's kind")
    p.add_argument("--coordination-note", default="", help="agreed with operations")
    p.add_argument("--option", action="append", default=[],
                   help="a trade-off's option considered (repeat)")
    p.add_argument("--choice", default="", help="the option chosen")
    p.add_argument("--risk-accepted", default="", help="the risk accepted")
    p.add_argument("--approved-by", default="", help="who approved the trade-off")
    p = sub.add_parser("attach", help="attach a file as preserved evidence (kept by SHA-256)")
    _record(p)
    p.add_argument("file", type=Path, help="the file to attach")
    p.add_argument("--item", choices=["logs", "configuration_snapshot", "batch_records",
                                      "other"], default="other",
                   help="the evidence checklist item it is for")
    p.add_argument("--media-type", default="application/octet-stream")
    p = sub.add_parser("download", help="write an attachment to a file; the access is a "
                       "chain-of-custody entry in the trail")
    p.add_argument("id")
    p.add_argument("sha256", help="the attachment's SHA-256 (otwatch-records show)")
    p.add_argument("--purpose", required=True, help="why (kept in the chain of custody)")
    p.add_argument("--output", "-o", type=Path, required=True, help="where to write it")
    p = sub.add_parser("decision-status", help="change a containment decision's status")
    _record(p)
    p.add_argument("index", type=int, help="the decision's number, from 0")
    p.add_argument("--status", required=True, choices=_values(DecisionStatus))
    p.add_argument("--note")
    p = sub.add_parser("containment", help="evidence preserved; why what stays in effect stays")
    _record(p)
    for item in ("logs", "configuration-snapshot", "batch-records"):
        p.add_argument(f"--{item}", action="store_true", help=f"{item} preserved")
    p.add_argument("--kept-justification", help="why holds/decisions in effect stay at closure")


def _rca_command(sub: Any) -> None:
    p = sub.add_parser("rca", help="the integrated root cause analysis (flags given change)")
    _record(p)
    p.add_argument("--root-cause", help="the root cause statement")
    p.add_argument("--why", action="append", metavar="DOMAIN: ANSWER",
                   help=f"a 5 Whys answer with its domain (repeat, in order); domains: "
                        f"{', '.join(_values(CauseDomain))}")
    p.add_argument("--bone", action="append", metavar="CATEGORY: CAUSE",
                   help=f"a fishbone cause (repeat); categories: "
                        f"{', '.join(_values(FishboneCategory))}")
    p.add_argument("--security-found", type=_yes_no,
                   help="the RCA found a security cause: yes or no (none found)")
    p.add_argument("--security-statement", help="the finding, or why none was found")
    p.add_argument("--validated-by", action="append", help="a user who validated (repeat)")


def _capa_commands(sub: Any) -> None:
    p = sub.add_parser("capa-add", help="add a CAPA action (it starts open)")
    _record(p)
    p.add_argument("action_id", help="e.g. A1 (new on the record)")
    p.add_argument("--description", required=True)
    p.add_argument("--owner", required=True, help="user id")
    p.add_argument("--domain", required=True, choices=_values(Domain))
    p.add_argument("--type", dest="capa_type", choices=_values(CapaType), default="corrective")
    p.add_argument("--owning-system", choices=_values(OwningSystem), default="qms")
    p.add_argument("--external-ref", default="", help="its id in the owning system")
    p.add_argument("--priority", choices=_values(Priority), default="medium")
    p.add_argument("--addresses", default="", help="the root cause it addresses")
    p.add_argument("--due", required=True, type=_day, help="due date, YYYY-MM-DD")
    p.add_argument("--revalidation-required", action="store_true")
    p.add_argument("--change-control-ref", default="", help="with --revalidation-required")
    p = sub.add_parser("capa-update", help="change a CAPA action's status or details")
    _record(p)
    p.add_argument("action_id")
    p.add_argument("--status", choices=_values(ActionStatus))
    p.add_argument("--owner")
    p.add_argument("--description")
    p.add_argument("--external-ref")
    p.add_argument("--priority", choices=_values(Priority))
    p = sub.add_parser("move-due", help="move a CAPA action's due date (reason + approver)")
    _record(p)
    p.add_argument("action_id")
    p.add_argument("--to", required=True, type=_day, help="the new due date")
    p.add_argument("--approved-by", required=True, help="user id of the approver")
    p = sub.add_parser("check-effectiveness", help="an effectiveness check of an action or "
                       "of the record")
    _record(p)
    p.add_argument("--action", help="a done CAPA action (omit: the record)")
    p.add_argument("--effective", required=True, type=_yes_no, help="yes or no")
    p.add_argument("--against", required=True, help="the success criteria checked against")
    p.add_argument("--performed-at", type=_when, help="default: now")
    p.add_argument("--notes", default="")
    p.add_argument("--follow-up-on", type=_day, help="a later check, YYYY-MM-DD")


def manual_report(args: argparse.Namespace) -> ManualReport:
    return ManualReport(
        controller=args.controller, tag=args.tag, site=args.site, line=args.line,
        description=args.description, severity=Severity(args.severity),
        occurred_at=args.occurred_at, quality_impact=args.quality_impact,
        security_impact=args.security_impact)


def _pairs(items: list[str] | None, flag: str) -> list[tuple[str, str]]:
    found = []
    for item in items or []:
        head, sep, tail = item.partition(":")
        if not sep or not tail.strip():
            raise StepArgError(f"{flag} {item!r}: write it as 'DOMAIN: TEXT'")
        found.append((head.strip(), tail.strip()))
    return found


def _systems(items: list[str] | None) -> list[SystemInScope] | None:
    if items is None:
        return None
    systems = []
    for item in items:
        name, *flags = item.split(":")
        unknown = set(flags) - {"validated", "qualified"}
        if unknown or not name.strip():
            raise StepArgError(f"--system {item!r}: NAME then optional :validated :qualified")
        systems.append(SystemInScope(name=name.strip(), validated="validated" in flags,
                                     qualified="qualified" in flags))
    return systems


def step_command(args: argparse.Namespace) -> Command:
    """The workflow command a step sub-command stands for (before signing in)."""
    base: dict[str, Any] = {"record_id": args.id, "reason": args.reason}
    build = _BUILDERS[args.command]
    try:
        command: Command = build(args, base)
    except ValidationError as exc:
        raise StepArgError("; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or args.command}: {err['msg']}"
            for err in exc.errors())) from None
    return command


def _contribute(args: argparse.Namespace, base: dict[str, Any]) -> Command:
    if (args.severity is None) != (args.likelihood is None):
        raise StepArgError("--severity and --likelihood go together (a cell of the matrix)")
    rating = (None if args.severity is None else
              RiskRating(severity=args.severity, likelihood=args.likelihood))
    return ContributeImpact(**base, function=args.function, assessment=args.assessment,
                            risk=args.risk, signed_off=args.signed_off, rating=rating)


def _impact(args: argparse.Namespace, base: dict[str, Any]) -> Command:
    return AssessImpact(**base, product_impact=args.product_impact,
                        data_integrity=args.data_integrity, look_back_from=args.look_back_from,
                        look_back_basis=args.look_back_basis, systems=_systems(args.system),
                        containment_risk=args.containment_risk)


def _notify(args: argparse.Namespace, base: dict[str, Any]) -> Command:
    return DecideNotification(**base, decision=NotificationDecision(
        audience=Audience(args.audience), notify=args.notify, rationale=args.rationale,
        notified_to=args.notified_to, notified_at=args.notified_at))


def _decide(args: argparse.Namespace, base: dict[str, Any]) -> Command:
    return RecordDecision(**base, decision=ContainmentDecision(
        kind=DecisionKind(args.kind), status=DecisionStatus(args.status), owner=args.owner,
        note=args.note, action=args.action and SecurityActionKind(args.action),
        coordination_note=args.coordination_note, options=args.option, choice=args.choice,
        risk_accepted=args.risk_accepted, approved_by=args.approved_by))


def _containment(args: argparse.Namespace, base: dict[str, Any]) -> Command:
    ticked = args.logs or args.configuration_snapshot or args.batch_records
    checklist = (EvidenceChecklist(logs=args.logs,
                                   configuration_snapshot=args.configuration_snapshot,
                                   batch_records=args.batch_records) if ticked else None)
    return SetContainment(**base, evidence_checklist=checklist,
                          kept_justification=args.kept_justification)


def _rca(args: argparse.Namespace, base: dict[str, Any]) -> Command:
    whys = [WhyAnswer(domain=CauseDomain(d), answer=a) for d, a in _pairs(args.why, "--why")]
    bones: dict[FishboneCategory, list[str]] = {}
    for category, cause in _pairs(args.bone, "--bone"):
        bones.setdefault(FishboneCategory(category), []).append(cause)
    if (args.security_found is None) != (args.security_statement is None):
        raise StepArgError("--security-found and --security-statement go together")
    finding = (None if args.security_found is None else
               SecurityFinding(found=args.security_found, statement=args.security_statement))
    return RecordRootCause(**base, root_cause=args.root_cause, five_whys=whys or None,
                           fishbone=bones or None, security_finding=finding,
                           validated_by=args.validated_by)


def _capa_add(args: argparse.Namespace, base: dict[str, Any]) -> Command:
    return AddCapaAction(**base, action=CapaAction(
        id=args.action_id, description=args.description, owner=args.owner,
        domain=Domain(args.domain), capa_type=CapaType(args.capa_type),
        owning_system=OwningSystem(args.owning_system), external_ref=args.external_ref,
        priority=Priority(args.priority), addresses=args.addresses, original_due=args.due,
        current_due=args.due, revalidation_required=args.revalidation_required,
        change_control_ref=args.change_control_ref))


def _capa_update(args: argparse.Namespace, base: dict[str, Any]) -> Command:
    changes = {key: getattr(args, key) for key in
               ("status", "owner", "description", "external_ref", "priority")
               if getattr(args, key) is not None}
    if not changes:
        raise StepArgError("capa-update: give --status, --owner, --description, "
                           "--external-ref or --priority")
    return UpdateCapaAction(**base, action_id=args.action_id, changes=changes)


def _attach(args: argparse.Namespace, base: dict[str, Any]) -> Command:
    try:
        content = args.file.read_bytes()
    except OSError as exc:
        raise StepArgError(f"attach: cannot read {str(args.file)!r} ({exc.strerror})") from None
    return AttachFile(**base, filename=args.file.name, content=content,
                      media_type=args.media_type, item=args.item)


_BUILDERS: dict[str, Any] = {
    "attach": _attach,
    "leads": lambda a, b: AssignLeads(**b, lead=a.lead, co_lead=a.co_lead),
    "contribute-impact": _contribute,
    "impact": _impact,
    "notify": _notify,
    "hold": lambda a, b: PlaceHold(**b, lot_id=a.lot),
    "release": lambda a, b: ReleaseHold(**b, lot_id=a.lot),
    "decide": _decide,
    "decision-status": lambda a, b: UpdateDecision(**b, index=a.index,
                                                   status=DecisionStatus(a.status), note=a.note),
    "containment": _containment,
    "rca": _rca,
    "capa-add": _capa_add,
    "capa-update": _capa_update,
    "move-due": lambda a, b: MoveCapaDue(**b, action_id=a.action_id, to_due=a.to,
                                         approved_by=a.approved_by),
    "check-effectiveness": lambda a, b: CheckEffectiveness(
        **b, action_id=a.action, effective=a.effective, against_criteria=a.against,
        performed_at=a.performed_at, notes=a.notes, follow_up_on=a.follow_up_on),
}
