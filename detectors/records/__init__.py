"""Master records: one quality nonconformity per incident, linked both ways with a security
ticket, with evidence, lifecycle, CAPA, KPIs and a hash-chained audit trail.

Public surface (everything else is private)::

    from detectors.records import open_store, RecordStore, MasterRecord, RecordOutcome
    store = open_store("records.db")   # or "postgresql://…", optional schema=
    store.migrate()
    store.record_events([(event, classification)], now=now)

Errors: see `detectors.records._exceptions` (all derive from `RecordsError`).
"""

from detectors.records._exceptions import (
    InvalidUpdate,
    ReasonRequired,
    RecordNotFound,
    RecordsError,
    StoreUnavailable,
    TransitionRefused,
)
from detectors.records.lifecycle import allowed_targets, check_transition, missing_for
from detectors.records.models import (
    OPEN_STATES,
    ActionStatus,
    AffectedLot,
    CapaAction,
    Containment,
    Domain,
    EffectivenessCheck,
    Evidence,
    FishboneCategory,
    ImpactAssessment,
    Kpis,
    LotHold,
    MasterRecord,
    NcLog,
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
from detectors.records.store import EDITABLE, RecordStore, open_store

__all__ = [
    "EDITABLE",
    "OPEN_STATES",
    "ActionStatus",
    "AffectedLot",
    "CapaAction",
    "Containment",
    "Domain",
    "EffectivenessCheck",
    "Evidence",
    "FishboneCategory",
    "ImpactAssessment",
    "InvalidUpdate",
    "Kpis",
    "LotHold",
    "MasterRecord",
    "NcLog",
    "ReasonRequired",
    "RecordNotFound",
    "RecordOutcome",
    "RecordStore",
    "RecordsError",
    "Role",
    "RootCauseAnalysis",
    "SecurityTicket",
    "Signature",
    "State",
    "StoreUnavailable",
    "SystemInScope",
    "TrailEntry",
    "TransitionRefused",
    "VerifyResult",
    "allowed_targets",
    "check_transition",
    "missing_for",
    "open_store",
]
