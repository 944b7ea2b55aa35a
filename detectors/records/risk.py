"""The workflow's settings: the risk matrix (severity x likelihood), escalation rules and
reminder lead time, as one strict model read from the records config (``workflow:``).

Example (``config/records-ui.yaml``)::

    workflow:
      risk_matrix:
        severities: [negligible, minor, major, critical]     # rows, least severe first
        likelihoods: [rare, unlikely, possible, likely]       # columns, least likely first
        levels:                                               # one row per severity
          - [low, low, low, medium]
          - [low, low, medium, high]
          - [low, medium, high, high]
          - [medium, high, high, high]

    >>> WorkflowSettings().risk_matrix.level("major", "possible")
    'high'
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from detectors.classification import Severity
from detectors.records._exceptions import InvalidUpdate


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RiskMatrix(_Strict):
    """``levels[i][j]`` is the risk level of severity ``severities[i]`` and likelihood
    ``likelihoods[j]``."""

    severities: tuple[str, ...] = ("negligible", "minor", "major", "critical")
    likelihoods: tuple[str, ...] = ("rare", "unlikely", "possible", "likely")
    levels: tuple[tuple[str, ...], ...] = (
        ("low", "low", "low", "medium"),
        ("low", "low", "medium", "high"),
        ("low", "medium", "high", "high"),
        ("medium", "high", "high", "high"),
    )

    @model_validator(mode="after")
    def _shape(self) -> RiskMatrix:
        if not self.severities or not self.likelihoods:
            raise ValueError("risk_matrix: severities and likelihoods need at least one name")
        for axis in ("severities", "likelihoods"):
            names = getattr(self, axis)
            if len(set(names)) != len(names):
                raise ValueError(f"risk_matrix.{axis}: a name appears twice ({list(names)})")
        if len(self.levels) != len(self.severities) or any(
                len(row) != len(self.likelihoods) for row in self.levels):
            raise ValueError(
                f"risk_matrix.levels: needs {len(self.severities)} rows (one per severity) of "
                f"{len(self.likelihoods)} levels (one per likelihood)")
        return self

    def level(self, severity: str, likelihood: str) -> str:
        """The matrix's level; `InvalidUpdate` naming the valid names for an unknown one."""
        if severity not in self.severities:
            raise InvalidUpdate(f"rating.severity: {severity!r} is not on the risk matrix; "
                                f"use one of {', '.join(self.severities)}")
        if likelihood not in self.likelihoods:
            raise InvalidUpdate(f"rating.likelihood: {likelihood!r} is not on the risk matrix; "
                                f"use one of {', '.join(self.likelihoods)}")
        return self.levels[self.severities.index(severity)][self.likelihoods.index(likelihood)]


class EscalationRule(_Strict):
    """Notify ``notify`` (roles) about open records at or above ``min_severity`` that are
    older than ``older_than_h`` hours, or that have a CAPA action overdue by more than
    ``overdue_by_d`` days (either condition, whichever is given)."""

    name: str = Field(min_length=1)
    min_severity: Severity = Severity.LOW
    older_than_h: float | None = Field(default=None, gt=0)
    overdue_by_d: int | None = Field(default=None, ge=0)
    notify: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _has_condition(self) -> EscalationRule:
        if self.older_than_h is None and self.overdue_by_d is None:
            raise ValueError(f"escalation rule {self.name!r}: give older_than_h or overdue_by_d "
                             "(or both)")
        return self


class WorkflowSettings(_Strict):
    """The ``workflow:`` section of the records config."""

    risk_matrix: RiskMatrix = Field(default_factory=RiskMatrix)
    escalation: tuple[EscalationRule, ...] = ()
    #: Remind owners this many days before a CAPA due date or follow-up date.
    remind_days_before: int = Field(default=3, ge=0)
