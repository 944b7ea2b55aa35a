"""The JSON API of the joint procedure's steps: one endpoint per typed command, one body
model per endpoint, each field documented once (the bodies reuse the records' own models).

Every body carries ``reason`` (why, for the audit trail) and may carry ``expected_version``
(the record version it was built on; a stale one is refused with 409). The actor is the
signed-in user, never a body field (`_api.parse_body` refuses those).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import Field

from detectors.records import (
    ActionStatus,
    AddCapaAction,
    AssessImpact,
    AssignLeads,
    AttachFile,
    CapaAction,
    CheckEffectiveness,
    Command,
    ContainmentDecision,
    ContributeImpact,
    DecideNotification,
    DecisionStatus,
    EvidenceChecklist,
    FishboneCategory,
    LookBack,
    MasterRecord,
    MoveCapaDue,
    NotificationDecision,
    PlaceHold,
    Priority,
    RecordDecision,
    RecordRootCause,
    RecordStore,
    ReleaseHold,
    RiskRating,
    SecurityFinding,
    SetContainment,
    SystemInScope,
    UpdateCapaAction,
    UpdateDecision,
    UpdateSection,
    WhyAnswer,
)
from detectors.records.report import ManualReport
from detectors.web._access import Handler
from detectors.web._api import BadRequest, _Body, _identity, _run, json_response, parse_body
from detectors.web._keys import PARTS


class _Step(_Body):
    reason: str = Field(min_length=1, max_length=4000, description="why, for the audit trail")
    expected_version: int | None = Field(default=None, ge=1,
                                         description="the record version this was built on")


class ReportBody(ManualReport):
    """``POST /api/reports``: a suspected joint nonconformity reported by hand."""

    reason: str = Field(min_length=1, description="why it is reported")


class LeadsBody(_Step):
    lead: str = Field(min_length=1, description="user id of the lead (holds quality)")
    co_lead: str = Field(min_length=1, description="user id of the co-lead (holds security)")


class SectionBody(_Step):
    field: str = Field(min_length=1, description="section or section.key, e.g. "
                                                 "log.success_criteria")
    value: Any = Field(description="the new value, in the section's schema")


class ImpactBody(_Step):
    product_impact: str | None = None
    data_integrity: str | None = None
    look_back_from: datetime | None = Field(default=None, description="data may be "
                                            "untrustworthy from here (see GET look-back)")
    look_back_basis: str | None = None
    systems: list[SystemInScope] | None = None
    containment_risk: str | None = Field(default=None,
                                         description="the risk containment itself creates")


class ContributionBody(_Step):
    function: str = Field(min_length=1, description="quality, operations or security")
    assessment: str = ""
    risk: str = ""
    signed_off: bool = Field(default=False, description="signed off by that function")
    rating: RiskRating | None = Field(default=None, description="severity and likelihood on "
                                      "the configured risk matrix; the level is looked up")


class NotificationBody(NotificationDecision, _Step):
    """A notification decision (who decided and when are set by otwatch)."""


class HoldBody(_Step):
    lot_id: str = Field(min_length=1)


class DecisionBody(_Step):
    decision: ContainmentDecision


class DecisionStatusBody(_Step):
    index: int = Field(ge=0, description="the decision's number, from 0")
    status: DecisionStatus
    note: str | None = None


class ContainmentBody(_Step):
    evidence_checklist: EvidenceChecklist | None = None
    kept_justification: str | None = Field(default=None, description="why what is still in "
                                           "effect at closure stays")


class RootCauseBody(_Step):
    root_cause: str | None = None
    five_whys: list[WhyAnswer] | None = None
    fishbone: dict[FishboneCategory, list[str]] | None = None
    security_finding: SecurityFinding | None = None
    validated_by: list[str] | None = Field(default=None, description="user ids of those who "
                                           "validated the root cause")


class CapaBody(_Step):
    action: CapaAction


class CapaUpdateBody(_Step):
    action_id: str = Field(min_length=1)
    status: ActionStatus | None = None
    description: str | None = None
    owner: str | None = None
    external_ref: str | None = None
    priority: Priority | None = None


class DueBody(_Step):
    action_id: str = Field(min_length=1)
    to_due: date
    approved_by: str = Field(min_length=1, description="user id of the approver who agreed")


class AttachBody(_Step):
    filename: str = Field(min_length=1, max_length=255)
    media_type: str = "application/octet-stream"
    item: str = Field(default="other", description="logs, configuration_snapshot, "
                      "batch_records or other")
    content_base64: str = Field(min_length=1, description="the file, base64 (the service "
                                "takes bodies up to 64 KiB: larger files by otwatch-records "
                                "attach)")


class EffectivenessBody(_Step):
    action_id: str | None = Field(default=None, description="a CAPA action; none: the record")
    effective: bool
    against_criteria: str = Field(min_length=1)
    performed_at: datetime | None = Field(default=None, description="default: now")
    notes: str = ""
    follow_up_on: date | None = Field(default=None, description="a later check, scheduled")


B = TypeVar("B", bound=_Step)
#: A step's typed command, made from the record id and the step's body (the JSON API and
#: the HTML forms, `_forms`, both go through these: one place for each step's mapping).
Build = Callable[[str, B], Command]


def _common(record_id: str, body: _Step) -> dict[str, Any]:
    return {"record_id": record_id, "reason": body.reason,
            "expected_version": body.expected_version}


def json_step(model: type[B], build: Build[B]) -> Handler:
    """The JSON endpoint of a step: the body as ``model``, then its command."""

    async def handler(request: web.Request) -> web.Response:
        body = await parse_body(request, model)
        return await _run(request, build(request.match_info["id"], body))

    return handler


async def report(request: web.Request) -> web.Response:
    body = await parse_body(request, ReportBody)
    record = await file_report(request, body)
    return json_response(record.model_dump(mode="json"), status=201)


async def file_report(request: web.Request, body: ReportBody) -> MasterRecord:
    """A hand-made report as the signed-in user (the JSON API and the /report form)."""
    parts, actor = request.app[PARTS], _identity(request).user.actor()
    now = parts.clock()
    made = ManualReport.model_validate(body.model_dump(exclude={"reason"}))
    record: MasterRecord = await parts.gate.run(
        lambda store: store.report(made, actor=actor, reason=body.reason, now=now))
    return record


def leads_command(rid: str, body: LeadsBody) -> Command:
    return AssignLeads(**_common(rid, body), lead=body.lead, co_lead=body.co_lead)


def section_command(rid: str, body: SectionBody) -> Command:
    return UpdateSection(**_common(rid, body), field=body.field, value=body.value)


def impact_command(rid: str, body: ImpactBody) -> Command:
    keys = body.model_dump(exclude={"reason", "expected_version"})
    keys["systems"] = body.systems
    return AssessImpact(**_common(rid, body), **keys)


def contribution_command(rid: str, body: ContributionBody) -> Command:
    return ContributeImpact(**_common(rid, body), function=body.function,
                            assessment=body.assessment, risk=body.risk,
                            signed_off=body.signed_off, rating=body.rating)


def notification_command(rid: str, body: NotificationBody) -> Command:
    decision = NotificationDecision.model_validate(
        body.model_dump(include=set(NotificationDecision.model_fields)))
    return DecideNotification(**_common(rid, body), decision=decision)


def hold_command(rid: str, body: HoldBody) -> Command:
    return PlaceHold(**_common(rid, body), lot_id=body.lot_id)


def release_command(rid: str, body: HoldBody) -> Command:
    return ReleaseHold(**_common(rid, body), lot_id=body.lot_id)


def decision_command(rid: str, body: DecisionBody) -> Command:
    return RecordDecision(**_common(rid, body), decision=body.decision)


def decision_status_command(rid: str, body: DecisionStatusBody) -> Command:
    return UpdateDecision(**_common(rid, body), index=body.index, status=body.status,
                          note=body.note)


def containment_command(rid: str, body: ContainmentBody) -> Command:
    return SetContainment(**_common(rid, body), evidence_checklist=body.evidence_checklist,
                          kept_justification=body.kept_justification)


def root_cause_command(rid: str, body: RootCauseBody) -> Command:
    return RecordRootCause(**_common(rid, body), root_cause=body.root_cause,
                           five_whys=body.five_whys, fishbone=body.fishbone,
                           security_finding=body.security_finding,
                           validated_by=body.validated_by)


def capa_command(rid: str, body: CapaBody) -> Command:
    return AddCapaAction(**_common(rid, body), action=body.action)


def capa_update_command(rid: str, body: CapaUpdateBody) -> Command:
    changes = body.model_dump(mode="json", exclude_none=True,
                              exclude={"reason", "expected_version", "action_id"})
    return UpdateCapaAction(**_common(rid, body), action_id=body.action_id, changes=changes)


def capa_due_command(rid: str, body: DueBody) -> Command:
    return MoveCapaDue(**_common(rid, body), action_id=body.action_id, to_due=body.to_due,
                       approved_by=body.approved_by)


def effectiveness_command(rid: str, body: EffectivenessBody) -> Command:
    return CheckEffectiveness(**_common(rid, body), action_id=body.action_id,
                              effective=body.effective, against_criteria=body.against_criteria,
                              performed_at=body.performed_at, notes=body.notes,
                              follow_up_on=body.follow_up_on)


def attach_command(rid: str, body: AttachBody) -> Command:
    try:
        content = base64.b64decode(body.content_base64, validate=True)
    except binascii.Error:
        raise BadRequest("field 'content_base64': not base64; encode the file's bytes") from None
    return AttachFile(**_common(rid, body), filename=body.filename,
                      media_type=body.media_type, item=body.item, content=content)


leads = json_step(LeadsBody, leads_command)
section = json_step(SectionBody, section_command)
impact = json_step(ImpactBody, impact_command)
contribution = json_step(ContributionBody, contribution_command)
notification = json_step(NotificationBody, notification_command)
hold = json_step(HoldBody, hold_command)
release = json_step(HoldBody, release_command)
decision = json_step(DecisionBody, decision_command)
decision_status = json_step(DecisionStatusBody, decision_status_command)
containment = json_step(ContainmentBody, containment_command)
root_cause = json_step(RootCauseBody, root_cause_command)
capa = json_step(CapaBody, capa_command)
capa_update = json_step(CapaUpdateBody, capa_update_command)
capa_due = json_step(DueBody, capa_due_command)
effectiveness = json_step(EffectivenessBody, effectiveness_command)
attach = json_step(AttachBody, attach_command)


async def download(request: web.Request) -> web.Response:
    """The file, after its chain-of-custody entry (``?purpose=`` says why, required)."""
    parts, actor = request.app[PARTS], _identity(request).user.actor()
    record_id, sha256 = request.match_info["id"], request.match_info["sha256"]
    purpose, now = request.query.get("purpose", ""), parts.clock()
    found: tuple[str, str, bytes] = await parts.gate.run(lambda s: s.download(
        record_id, sha256, actor=actor, purpose=purpose, now=now))
    filename, media_type, content = found
    safe = "".join(c for c in filename if c.isalnum() or c in "._-") or "attachment"
    return web.Response(body=content, content_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{safe}"'})


def _look_back(store: RecordStore, record_id: str) -> LookBack | None:
    return store.look_back(record_id)


async def look_back(request: web.Request) -> web.Response:
    record_id = request.match_info["id"]
    found = await request.app[PARTS].gate.run(lambda s: _look_back(s, record_id))
    if found is None:
        return json_response({"start": None, "basis": "no evidence on this controller"})
    return json_response({"start": found.start.isoformat(), "basis": found.basis})
