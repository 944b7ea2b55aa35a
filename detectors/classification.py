"""What the joint criteria decided about one event: the contract between criteria and records.

The criteria (`detectors.criteria`) produce a `Classification`; the records store
(`detectors.records`) turns it into a master record, or attaches the event as evidence to
the open record with the same ``correlation_key``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ClassKind(StrEnum):
    JOINT = "joint"
    QUALITY_ONLY = "quality_only"
    SECURITY_ONLY = "security_only"
    NONE = "none"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


SEVERITY_ORDER = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class Classification(BaseModel):
    """The decision on one event, with the rules that fired and the criteria version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ClassKind
    severity: Severity = Severity.LOW
    rules_fired: tuple[str, ...] = ()
    criteria_version: str
    quality_impact: str = ""
    security_impact: str = ""
    description: str = ""
    #: Events with the same key, within the correlation window, are one incident.
    correlation_key: str = ""
    #: Set for an event of a burst: its line's key (`detectors.correlate.line_key`), which
    #: the records store claims so that one burst is one record across classifier processes.
    line_key: str = ""
    #: MITRE ATT&CK for ICS technique ids named by the rules that fired (e.g. T0836).
    attack_techniques: tuple[str, ...] = Field(default=())

    @property
    def opens_record(self) -> bool:
        return self.kind is not ClassKind.NONE
