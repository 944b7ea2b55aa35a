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
      escalation:                 # notify roles about records that need attention
        - {name: critical-open, min_severity: critical, older_than_h: 24, notify: [approver]}
        - {name: actions-late, overdue_by_d: 7, notify: [quality, security]}
      remind_days_before: 3       # remind owners of CAPA actions and follow-ups due this soon
      email:                      # reminders and escalations by e-mail (SMTP)
        host: smtp.plant.example
        port: 25
        sender: otwatch@plant.example
        people: {qa.lee: qa.lee@plant.example}
        roles: {approver: [qa-approvers@plant.example]}

    >>> WorkflowSettings().risk_matrix.level("major", "possible")
    'high'
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.kafka.settings import KafkaSettings, TopicNames
from detectors.classification import Severity
from detectors.records._exceptions import InvalidUpdate


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RiskMatrix(_Strict):
    """``levels[i][j]`` is the risk level of severity ``severities[i]`` and likelihood
    ``likelihoods[j]``."""

    #: The severity names a rating may use (the matrix's rows), least severe first.
    severities: tuple[str, ...] = ("negligible", "minor", "major", "critical")
    #: The likelihood names a rating may use (the matrix's columns), least likely first.
    likelihoods: tuple[str, ...] = ("rare", "unlikely", "possible", "likely")
    #: The risk level of each cell: one row per severity, one level per likelihood in a row.
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

    #: The rule's name, printed in the notification and the trail.
    name: str = Field(min_length=1)
    #: Only records of this severity or higher are escalated.
    min_severity: Severity = Severity.LOW
    #: Escalate an open record older than this many hours (unset: age alone never does).
    older_than_h: float | None = Field(default=None, gt=0)
    #: Escalate a record with a CAPA action overdue by more than this many days (unset: overdue
    #: actions alone never do).
    overdue_by_d: int | None = Field(default=None, ge=0)
    #: The roles notified (their addresses are in ``email.roles``).
    notify: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _has_condition(self) -> EscalationRule:
        if self.older_than_h is None and self.overdue_by_d is None:
            raise ValueError(f"escalation rule {self.name!r}: give older_than_h or overdue_by_d "
                             "(or both)")
        return self


class EmailSettings(_Strict):
    """Where reminders and escalations are e-mailed: an SMTP relay, the sender, and the
    addresses of people (by user id) and roles (escalations notify roles)."""

    #: The SMTP relay's host name.
    host: str = Field(min_length=1)
    #: The SMTP relay's port.
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(min_length=3, description="the From address")
    #: Upgrade the connection with STARTTLS before anything is sent.
    starttls: bool = False
    #: The SMTP user to log in as (with ``password_file``; unset: no login).
    username: str | None = None
    #: A file holding the SMTP password (never the password itself in the config).
    password_file: Path | None = None
    people: dict[str, str] = Field(default_factory=dict, description="user id -> address")
    roles: dict[str, tuple[str, ...]] = Field(default_factory=dict,
                                              description="role -> addresses")


class WorkflowSettings(_Strict):
    """The ``workflow:`` section of the records config."""

    #: The severity x likelihood matrix that gives a rated record its risk level.
    risk_matrix: RiskMatrix = Field(default_factory=RiskMatrix)
    #: Reminders and escalations by e-mail (unset: not e-mailed).
    email: EmailSettings | None = None
    #: Publish reminders and escalations on the records topic too (None: e-mail only).
    kafka: KafkaSettings | None = None
    #: The topic reminders and escalations are published on (with ``kafka``).
    records_topic: str = Field(default=TopicNames().records, min_length=1)
    #: Rules that notify roles about records that need attention (none: no escalations).
    escalation: tuple[EscalationRule, ...] = ()
    #: Remind owners this many days before a CAPA due date or follow-up date.
    remind_days_before: int = Field(default=3, ge=0)
