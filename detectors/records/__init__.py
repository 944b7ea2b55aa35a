"""Master records: one quality nonconformity per incident, linked both ways with a security
ticket, with evidence, lifecycle, containment, CAPA, KPIs and a hash-chained audit trail.

Public surface (everything else is private)::

    from detectors.records import open_store, Actor, PlaceHold, Transition
    store = open_store("records.db")   # or "postgresql://…", optional schema=
    store.migrate()                    # Alembic, from code; adopts pre-Alembic databases
    store.record_events([(event, classification)], now=now)          # the classifier's path
    store.execute(PlaceHold(record_id=rid, lot_id="LOT-7", reason="made under the change",
                            expected_version=record.version),
                  actor=actor, now=now)     # one workflow command; the actor from identity

- Every change to a record is a command (`Transition`, `Sign`, `AddComment`, `UpdateSection`,
  `PlaceHold`, `ReleaseHold`, `RecordDecision`, `UpdateDecision`, `ContributeImpact`,
  `AddCapaAction`, `UpdateCapaAction`, `SetTicketStatus`, and the joint procedure's steps
  `AssignLeads`, `AssessImpact`, `DecideNotification`, `RecordRootCause`, `SetContainment`,
  `MoveCapaDue`, `CheckEffectiveness`; `LinkTicket`, `ReportTicketState`,
  `AddExternalReference` in ``links``) run by `RecordStore.execute` in one
  transaction: actor (an enabled user, with the roles the users table holds), load, version
  check, permission (`Permission`, `GRANTS`), guards (`GUARDS`: one table, `missing_for`,
  `signature_refusal`),
  write, trail. `RecordStore.update_field` and `RecordStore.transition` are thin wrappers.
- The `Actor` comes from `detectors.identity` (a session, an API token, a password the CLI
  asked for); a `Sign` carries the `Reauthentication` identity made when the signer entered
  their password again.
- The data layer is SQLAlchemy Core (`detectors.records.tables`, one `MetaData` for SQLite
  and PostgreSQL) with Alembic migrations shipped in ``detectors/records/migrations``.
- `DatabaseTarget` parses every database target (SQLite path, ``sqlite:///``, PostgreSQL DSN,
  optional schema) and prints it with the password hidden (`redact`).
- `TrailRelay` follows the audit trail from a cursor kept in the database and hands each
  entry's messages to a sink (the containment publisher, the ticket outbox in
  `detectors.tickets`, the record-change publisher in `detectors.record_changes`).

Errors: see `detectors.records._exceptions` (all derive from `RecordsError`).
"""

from detectors.records._exceptions import (
    ConcurrentUpdate,
    GuardRefused,
    InvalidUpdate,
    NotMigrated,
    PermissionDenied,
    ReasonRequired,
    RecordNotFound,
    RecordsError,
    SignatureRefused,
    StoreUnavailable,
    TransitionRefused,
    UnknownActor,
)
from detectors.records.commands import (
    Actor,
    AddCapaAction,
    AddComment,
    AssessImpact,
    AssignLeads,
    AttachFile,
    CheckEffectiveness,
    Command,
    ContributeImpact,
    DecideNotification,
    MoveCapaDue,
    PlaceHold,
    Reauthentication,
    RecordDecision,
    RecordRootCause,
    ReleaseHold,
    SetContainment,
    SetTicketStatus,
    Sign,
    SignatureRequest,
    Transition,
    UpdateCapaAction,
    UpdateDecision,
    UpdateSection,
)
from detectors.records.joint import (
    Audience,
    CapaType,
    CauseDomain,
    DueDateChange,
    EvidenceChecklist,
    Function,
    NotificationDecision,
    OwningSystem,
    Priority,
    RiskRating,
    SecurityActionKind,
    SecurityFinding,
    WhyAnswer,
)
from detectors.records.lifecycle import (
    GUARDS,
    Gate,
    allowed_targets,
    check_transition,
    missing_at,
    missing_for,
)
from detectors.records.links import (
    REFERENCE_KINDS,
    TICKET_SYSTEMS,
    AddExternalReference,
    LinkTicket,
    ReportTicketState,
)
from detectors.records.lookback import LookBack, propose_look_back
from detectors.records.migrate import HEAD as HEAD_REVISION
from detectors.records.models import (
    OPEN_STATES,
    SIGNING_ROLES,
    ActionStatus,
    AffectedLot,
    Attachment,
    CapaAction,
    Containment,
    ContainmentDecision,
    DecisionKind,
    DecisionStatus,
    Domain,
    EffectivenessCheck,
    Evidence,
    FishboneCategory,
    ImpactAssessment,
    ImpactContribution,
    Kpis,
    LotHold,
    MasterRecord,
    NcLog,
    RecordHeader,
    RecordOutcome,
    Role,
    RootCauseAnalysis,
    SecurityTicket,
    Signature,
    State,
    SystemInScope,
    TrailEntry,
    VerifyResult,
)
from detectors.records.permissions import GRANTS, Permission
from detectors.records.relay import Outgoing, TrailCursor, TrailRelay
from detectors.records.report import ManualReport
from detectors.records.risk import EscalationRule, RiskMatrix, WorkflowSettings
from detectors.records.store import EDITABLE, RecordStore, open_store
from detectors.records.target import DatabaseTarget, redact

__all__ = [
    "EDITABLE",
    "GRANTS",
    "GUARDS",
    "HEAD_REVISION",
    "OPEN_STATES",
    "REFERENCE_KINDS",
    "SIGNING_ROLES",
    "TICKET_SYSTEMS",
    "ActionStatus",
    "Actor",
    "AddCapaAction",
    "AddComment",
    "AddExternalReference",
    "AffectedLot",
    "AssessImpact",
    "AssignLeads",
    "AttachFile",
    "Attachment",
    "Audience",
    "CapaAction",
    "CapaType",
    "CauseDomain",
    "CheckEffectiveness",
    "Command",
    "ConcurrentUpdate",
    "Containment",
    "ContainmentDecision",
    "ContributeImpact",
    "DatabaseTarget",
    "DecideNotification",
    "DecisionKind",
    "DecisionStatus",
    "Domain",
    "DueDateChange",
    "EffectivenessCheck",
    "EscalationRule",
    "Evidence",
    "EvidenceChecklist",
    "FishboneCategory",
    "Function",
    "Gate",
    "GuardRefused",
    "ImpactAssessment",
    "ImpactContribution",
    "InvalidUpdate",
    "Kpis",
    "LinkTicket",
    "LookBack",
    "LotHold",
    "ManualReport",
    "MasterRecord",
    "MoveCapaDue",
    "NcLog",
    "NotMigrated",
    "NotificationDecision",
    "Outgoing",
    "OwningSystem",
    "Permission",
    "PermissionDenied",
    "PlaceHold",
    "Priority",
    "ReasonRequired",
    "Reauthentication",
    "RecordDecision",
    "RecordHeader",
    "RecordNotFound",
    "RecordOutcome",
    "RecordRootCause",
    "RecordStore",
    "RecordsError",
    "ReleaseHold",
    "ReportTicketState",
    "RiskMatrix",
    "RiskRating",
    "Role",
    "RootCauseAnalysis",
    "SecurityActionKind",
    "SecurityFinding",
    "SecurityTicket",
    "SetContainment",
    "SetTicketStatus",
    "Sign",
    "Signature",
    "SignatureRefused",
    "SignatureRequest",
    "State",
    "StoreUnavailable",
    "SystemInScope",
    "TrailCursor",
    "TrailEntry",
    "TrailRelay",
    "Transition",
    "TransitionRefused",
    "UnknownActor",
    "UpdateCapaAction",
    "UpdateDecision",
    "UpdateSection",
    "VerifyResult",
    "WhyAnswer",
    "WorkflowSettings",
    "allowed_targets",
    "check_transition",
    "missing_at",
    "missing_for",
    "open_store",
    "propose_look_back",
    "redact",
]
