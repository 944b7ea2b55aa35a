"""The master record and what hangs off it, as pydantic models.

A master record is one quality nonconformity (``NC-YYYY-NNNNNN``) per incident, linked both
ways with one security ticket (``SEC-YYYY-NNNNNN``). The sections quality works on (27001 10.2
log, impact assessment, lots, containment, root cause, CAPA) are plain models here so that
`RecordStore.update_field` can validate a new value before it reaches the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, NamedTuple

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from detectors.classification import Severity
from detectors.records.joint import (
    CapaType,
    DueDateChange,
    EvidenceChecklist,
    NotificationDecision,
    OwningSystem,
    Priority,
    RiskRating,
    SecurityActionKind,
    SecurityFinding,
    WhyAnswer,
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class State(StrEnum):
    DETECTED = "detected"
    TRIAGE = "triage"
    CONTAINMENT = "containment"
    INVESTIGATION = "investigation"
    ACTION_PLAN = "action_plan"
    IMPLEMENTATION = "implementation"
    EFFECTIVENESS_CHECK = "effectiveness_check"
    CLOSED = "closed"
    CANCELLED = "cancelled"


OPEN_STATES = frozenset(State) - {State.CLOSED, State.CANCELLED}


class Role(StrEnum):
    """The roles a user holds (`detectors.records.permissions.GRANTS` says what each may do)."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    QUALITY = "quality"
    SECURITY = "security"
    APPROVER = "approver"
    ADMIN = "admin"
    INTEGRATION = "integration"


#: The roles a signature is given as: a joint decision needs one of each, from two people.
SIGNING_ROLES = (Role.QUALITY, Role.SECURITY)


class Domain(StrEnum):
    QUALITY = "quality"
    SECURITY = "security"
    BOTH = "both"


class ActionStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"


class NcLog(_Model):
    """The ISO/IEC 27001 clause 10.2 log; its id and detection date live on the record."""

    clause_ref: str = ""
    root_cause: str = ""
    short_term_actions: str = ""
    long_term_actions: str = ""
    owner: str = ""
    follow_up_dates: list[date] = Field(default_factory=list)
    success_criteria: str = ""


class SystemInScope(_Model):
    name: str
    validated: bool = False
    qualified: bool = False


class ImpactContribution(_Model):
    """One function's part of the joint impact assessment (quality, security, production, …)."""

    function: str = Field(min_length=1)
    author: str = Field(min_length=1)
    assessment: str = ""
    risk: str = ""
    signed_off: bool = False
    updated_at: datetime | None = None
    rating: RiskRating | None = None


class ImpactAssessment(_Model):
    """The joint quality + security impact assessment: a summary and one contribution per
    function."""

    product_impact: str = ""
    data_integrity: str = ""
    systems: list[SystemInScope] = Field(default_factory=list)
    regulatory_notification_required: bool | None = None
    regulatory_rationale: str = ""
    containment_risk: str = ""
    contributions: list[ImpactContribution] = Field(default_factory=list)
    #: From when data may be untrustworthy, and what the start rests on (`lookback`).
    look_back_from: datetime | None = None
    look_back_basis: str = ""
    notifications: list[NotificationDecision] = Field(default_factory=list)


class AffectedLot(_Model):
    """A lot that ran on the controller from the change until restore or containment."""

    lot_id: str
    controller: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None


class LotHold(_Model):
    lot_id: str
    held_at: datetime
    held_by: str | None = None
    released_at: datetime | None = None
    released_by: str | None = None


class DecisionKind(StrEnum):
    RELEASE_FREEZE = "release_freeze"
    SECURITY_ACTION = "security_action"
    TRADE_OFF = "trade_off"
    EVIDENCE_PRESERVATION = "evidence_preservation"
    OTHER = "other"


class DecisionStatus(StrEnum):
    PROPOSED = "proposed"
    IN_EFFECT = "in_effect"
    LIFTED = "lifted"
    REJECTED = "rejected"


class ContainmentDecision(_Model):
    """One containment decision beside the lot holds: a release freeze, a security action
    (isolate the engineering workstation, rotate a password), a trade-off accepted."""

    kind: DecisionKind
    status: DecisionStatus = DecisionStatus.PROPOSED
    owner: str = ""
    note: str = ""
    decided_at: datetime | None = None
    decided_by: str | None = None
    #: A security action: what it does, and the note agreed with operations.
    action: SecurityActionKind | None = None
    coordination_note: str = ""
    #: A trade-off: the options considered, the choice, the risk accepted, who approved.
    options: list[str] = Field(default_factory=list)
    choice: str = ""
    risk_accepted: str = ""
    approved_by: str = ""


class Containment(_Model):
    lot_holds: list[LotHold] = Field(default_factory=list)
    decisions: list[ContainmentDecision] = Field(default_factory=list)
    release_freeze: bool = False
    evidence_preserved: bool = False
    notes: str = ""
    evidence_checklist: EvidenceChecklist = Field(default_factory=EvidenceChecklist)
    #: Why holds or decisions still in effect at closure stay (instead of releasing them).
    kept_justification: str = ""


class FishboneCategory(StrEnum):
    PEOPLE = "people"
    METHOD = "method"
    MACHINE = "machine"
    MATERIAL = "material"
    MEASUREMENT = "measurement"
    ENVIRONMENT = "environment"
    SECURITY_CONTROLS = "security_controls"
    # The joint procedure's categories (the same as `joint.CauseDomain`).
    PROCESS_EQUIPMENT = "process_equipment"
    HUMAN_FACTORS = "human_factors"
    TECHNICAL_SECURITY_CONTROLS = "technical_security_controls"
    MANAGEMENT_SYSTEMS = "management_systems"


def _why(value: Any) -> Any:
    """A 5 Whys answer written before answers carried a domain was plain text."""
    return {"answer": value} if isinstance(value, str) else value


class RootCauseAnalysis(_Model):
    five_whys: list[Annotated[WhyAnswer, BeforeValidator(_why)]] = Field(
        default_factory=list, max_length=10)
    fishbone: dict[FishboneCategory, list[str]] = Field(default_factory=dict)
    security_finding: SecurityFinding | None = None
    #: The people who validated the root cause (user ids).
    validated_by: list[str] = Field(default_factory=list)


class EffectivenessCheck(_Model):
    """The check, against the record's success criteria, that the actions worked."""

    performed_by: str
    performed_at: datetime
    effective: bool
    against_criteria: str
    notes: str = ""
    #: A later follow-up check, if one is scheduled.
    follow_up_on: date | None = None


class CapaAction(_Model):
    id: str
    description: str
    owner: str
    domain: Domain
    original_due: date
    current_due: date
    status: ActionStatus = ActionStatus.OPEN
    effectiveness_check: EffectivenessCheck | None = None
    capa_type: CapaType = CapaType.CORRECTIVE
    owning_system: OwningSystem = OwningSystem.QMS
    external_ref: str = ""
    priority: Priority = Priority.MEDIUM
    #: The root cause (or 5 Whys answer) this action addresses.
    addresses: str = ""
    revalidation_required: bool = False
    change_control_ref: str = ""
    due_changes: list[DueDateChange] = Field(default_factory=list)


class Attachment(_Model):
    """A file preserved as evidence: its SHA-256 (the content's address), name, media type,
    the checklist item it is for, who attached it and when."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    filename: str = Field(min_length=1, max_length=255)
    media_type: str = "application/octet-stream"
    item: str = Field(default="other", description="logs, configuration_snapshot, "
                      "batch_records or other")
    size: int = Field(default=0, ge=0)
    attached_by: str = ""
    attached_at: datetime | None = None


class Signature(_Model):
    """An electronic signature (21 CFR 11.50): the signer's printed name and user id, the
    role signed as, when, and what it means; ``step`` is the lifecycle step it approves
    (``action_plan->implementation``) and ``trail_seq`` the audit-trail entry that binds it."""

    printed_name: str = Field(min_length=1)
    user_id: str = ""
    role: Role
    meaning: str = Field(min_length=1)
    signed_at: datetime | None = None
    step: str = ""
    trail_seq: int | None = None


class Evidence(_Model):
    """One event attached to a record: its controller and tag, and what the criteria decided
    on it alone (``classification`` and ``rules_fired`` are empty on rows recorded before
    revision 0008)."""

    event_id: str
    sha256: str
    controller: str = ""
    tag: str = ""
    change_kind: str
    verdict: str
    severity: Severity
    classification: str = ""
    rules_fired: list[str] = Field(default_factory=list)
    old_value: Any = None
    new_value: Any = None
    approval: dict[str, Any] | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime
    detected_at: datetime
    attached_at: datetime
    raw: dict[str, Any] = Field(default_factory=dict)


class SecurityTicket(_Model):
    id: str
    record_id: str
    severity: Severity
    status: str = "open"
    indicators: list[str] = Field(default_factory=list)


class MasterRecord(_Model):
    """One nonconformity per incident, cross-linked with its security ticket."""

    id: str
    classification: str
    state: State
    #: None for a quality-only record: security tickets are for joint and security records.
    security_ticket: str | None
    controller: str
    tag: str
    site: str
    line: str
    severity: Severity
    description: str
    detected_at: datetime
    created_at: datetime
    last_event_at: datetime
    rules_fired: list[str]
    criteria_version: str
    correlation_key: str
    cancel_reason: str = ""
    #: Lead (quality) and co-lead (security), user ids; who reported it by hand, if anyone.
    lead: str = ""
    co_lead: str = ""
    reported_by: str = ""
    #: The closed record on the same controller and tag that this one recurs, if any.
    recurrence_of: str = ""
    #: The fired rules' quality and security impact texts, as the criteria gave them.
    quality_impact: str = ""
    security_impact: str = ""
    version: int = 1
    log: NcLog = Field(default_factory=NcLog)
    impact: ImpactAssessment = Field(default_factory=ImpactAssessment)
    affected_lots: list[AffectedLot] = Field(default_factory=list)
    containment: Containment = Field(default_factory=Containment)
    rca: RootCauseAnalysis = Field(default_factory=RootCauseAnalysis)
    capa_actions: list[CapaAction] = Field(default_factory=list)
    effectiveness_check: EffectivenessCheck | None = None
    signatures: list[Signature] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    attachments: list[Attachment] = Field(default_factory=list)
    ticket: SecurityTicket | None = None


@dataclass(frozen=True, slots=True)
class RecordHeader:
    """The facts of a record a trail relay adds to its messages. Fixed at creation but for
    the classification, controller and tag, which evidence that joins later may escalate
    (`detectors.records.incident`), and the security ticket a quality-only record gets then;
    a relay reads them when it first meets the record and again after such an entry
    (`relay.HEADER_FIELDS`)."""

    id: str
    #: None for a quality-only record: security tickets are for joint and security records.
    security_ticket: str | None
    classification: str
    controller: str
    tag: str
    site: str
    line: str


class RecordOutcome(NamedTuple):
    """What `RecordStore.record_events` did with one event. A named tuple: one is built per
    event, and a frozen dataclass took 1.0 µs to build against 0.35 (its ``__init__`` sets
    each field through ``object.__setattr__``)."""

    event_id: str
    record_id: str | None
    ticket_id: str | None
    created: bool
    duplicate: bool


class TrailEntry(_Model):
    seq: int
    record_id: str
    actor: str
    at: str
    field: str
    old: str | None
    new: str | None
    reason: str
    prev_hash: str
    hash: str


class VerifyResult(_Model):
    ok: bool
    entries: int
    first_broken_seq: int | None = None
    problem: str = ""


class Kpis(_Model):
    """KPIs from the audit trail; a mean is None when there is nothing to average yet."""

    records: int
    mean_time_to_detect_s: float | None
    mean_time_to_contain_s: float | None
    mean_time_to_close_s: float | None
    closed_with_corrective_action: int
    recurred: int
    recurrence_rate: float | None
    actions_due: int
    actions_done_by_original_due: int
    pct_actions_done_by_original_due: float | None
