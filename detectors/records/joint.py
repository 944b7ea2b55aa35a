"""The structured parts of the joint quality + security nonconformity procedure (issue 17).

Each model here is one documented schema: the API bodies, the CLI flags and the record's JSON
sections all use these, so a field means the same thing everywhere. `models.MasterRecord`
holds them; `lifecycle.GUARDS` checks them.

- `RiskRating`: severity x likelihood on the configured matrix (`risk.RiskMatrix`);
- `NotificationDecision`: one per audience (regulator, certification body, customer), with
  rationale, who decided and when, and to whom and when it was notified;
- `WhyAnswer` / `SecurityFinding`: a 5 Whys answer carries its cause domain; a joint record's
  RCA states what it found in the security domain (even "none found", with the reason);
- `CapaType`, `OwningSystem`, `Priority`, `DueDateChange`: what a CAPA action says about
  itself, and why and by whom its due date moved;
- `SecurityActionKind`, `EvidenceChecklist`: containment's security actions and the evidence
  preserved.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Function(StrEnum):
    """The functions that contribute to the joint impact assessment."""

    QUALITY = "quality"
    OPERATIONS = "operations"
    SECURITY = "security"


class RiskRating(_Model):
    """A rating on the risk matrix: ``level`` is what the configured matrix gives for
    ``severity`` x ``likelihood`` (set by the workflow, never typed in)."""

    severity: str = Field(min_length=1, description="a severity row of the risk matrix")
    likelihood: str = Field(min_length=1, description="a likelihood column of the matrix")
    level: str = Field(default="", description="the matrix's cell: set by otwatch")


class Audience(StrEnum):
    """Who may have to be told about the nonconformity."""

    REGULATOR = "regulator"
    CERTIFICATION_BODY = "certification_body"
    CUSTOMER = "customer"


class NotificationDecision(_Model):
    """Whether ``audience`` is notified, why, who decided and when; if notified, to whom and
    when (``notified_to`` and ``notified_at`` are required when ``notify`` is true)."""

    audience: Audience
    notify: bool
    rationale: str = Field(min_length=1, description="why (not) notified")
    notified_to: str = Field(default="", description="the body or person notified")
    notified_at: datetime | None = Field(default=None, description="when they were notified")
    decided_by: str = Field(default="", description="the user who decided: set by otwatch")
    decided_at: datetime | None = Field(default=None, description="set by otwatch")


class CauseDomain(StrEnum):
    """The domain a cause belongs to (a 5 Whys answer, a fishbone bone)."""

    PROCESS_EQUIPMENT = "process_equipment"
    HUMAN_FACTORS = "human_factors"
    TECHNICAL_SECURITY_CONTROLS = "technical_security_controls"
    MANAGEMENT_SYSTEMS = "management_systems"


class WhyAnswer(_Model):
    """One answer of the 5 Whys and the domain of the cause it names."""

    answer: str = Field(min_length=1)
    domain: CauseDomain | None = None


class SecurityFinding(_Model):
    """What the RCA found in the security domain: ``found`` false means "none found", and
    ``statement`` then gives the reason (both cases need it)."""

    found: bool
    statement: str = Field(min_length=1, description="the finding, or why none was found")


class CapaType(StrEnum):
    CORRECTION = "correction"
    CORRECTIVE = "corrective"
    PREVENTIVE = "preventive"


class OwningSystem(StrEnum):
    """Where the action is tracked, beside otwatch (``external_ref`` is its id there)."""

    QMS = "qms"
    ITSM = "itsm"
    OT_MAINTENANCE = "ot_maintenance"
    MES_CHANGE = "mes_change"


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class DueDateChange(_Model):
    """A move of a CAPA action's due date: from, to, why, who approved it, who and when."""

    from_due: date
    to_due: date
    reason: str = Field(min_length=1)
    approved_by: str = Field(min_length=1)
    changed_by: str = ""
    changed_at: datetime | None = None


class SecurityActionKind(StrEnum):
    ISOLATE = "isolate"
    DISABLE_ACCOUNT = "disable_account"
    ROLLBACK_CONFIGURATION = "rollback_configuration"
    BLOCK = "block"


class EvidenceChecklist(_Model):
    """The evidence investigators preserve; each item true once preserved."""

    logs: bool = False
    configuration_snapshot: bool = False
    batch_records: bool = False
