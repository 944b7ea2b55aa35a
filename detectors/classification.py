"""What the joint criteria decided about one event: the contract between criteria and records.

The criteria (`detectors.criteria`) produce a `Classification`; the records store
(`detectors.records`) turns it into a master record, or attaches the event as evidence to
the open record with the same ``correlation_key``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from agent.contract.events import built_model


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


#: (a module constant: an enum member looked up on its class is a slow descriptor per event)
_NONE = ClassKind.NONE

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
        return self.kind is not _NONE


#: Every field of a `Classification`, as the set of fields given (`built_for`).
_FIELDS = frozenset(Classification.model_fields)

#: The fields of a `Classification` that a decision of the criteria fixes, with the event's
#: own (description and keys) left empty: `decision`, filled in per event by `built_for`.
Decision = dict[str, object]


def decision(
    *, kind: ClassKind, severity: Severity, rules_fired: tuple[str, ...], criteria_version: str,
    quality_impact: str, security_impact: str, attack_techniques: tuple[str, ...],
) -> Decision:
    """What a set of fired rules decides, as the fields of its classifications in the model's
    order: made once per decision of the compiled criteria, not per event."""
    return {
        "kind": kind, "severity": severity, "rules_fired": rules_fired,
        "criteria_version": criteria_version, "quality_impact": quality_impact,
        "security_impact": security_impact, "description": "", "correlation_key": "",
        "line_key": "", "attack_techniques": attack_techniques,
    }


def built_for(
    decided: Decision, description: str, correlation_key: str, line_key: str
) -> Classification:
    """A `Classification` of a `decision` and one event's description and keys, from values
    that are already valid (the compiled criteria's and a validated event's): what
    ``model_construct`` makes, at a third of its cost (it fills defaults and checks names per
    call; half of classifying an event), and the decision's fields copied rather than named
    again per event. The instance is frozen like any other; a test checks it equals the
    validated model."""
    fields = decided.copy()
    fields["description"] = description
    fields["correlation_key"] = correlation_key
    fields["line_key"] = line_key
    return built_model(Classification, fields, _FIELDS)
