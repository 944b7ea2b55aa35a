"""The `SuspectChange` event contract (schema ``otwatch.change/1``).

The agent owns the schema it publishes (see `agent.contract` for what the classifier may
import). Every event the agent detects, approved or not, is one ``SuspectChange``; its
``verdict`` decides the topic (``authorized`` goes to the audit-trail topic, everything else to
the suspect topic).

Example::

    >>> ev = SuspectChange.model_validate_json(raw)
    >>> ev.kafka_key()
    b'plant-1/press-01'
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA = "otwatch.change/1"

#: A tag's value: numbers, text, booleans; a recipe is a mapping (id, version, parameters).
TagValue = bool | int | float | str | dict[str, Any] | None


class Protocol(StrEnum):
    OPCUA = "opcua"
    MODBUS = "modbus"


class TagKind(StrEnum):
    SETPOINT = "setpoint"
    RECIPE = "recipe"
    PROGRAM = "program"
    MODE = "mode"


class ChangeKind(StrEnum):
    SETPOINT_CHANGE = "setpoint_change"
    RECIPE_SWITCH = "recipe_switch"
    RECIPE_EDIT = "recipe_edit"
    PROGRAM_CHANGE = "program_change"
    MODE_CHANGE = "mode_change"
    MONITORING_GAP = "monitoring_gap"
    CHANGED_WHILE_UNWATCHED = "changed_while_unwatched"


class Verdict(StrEnum):
    AUTHORIZED = "authorized"
    UNAPPROVED = "unapproved"
    OUTSIDE_WINDOW = "outside_window"
    VALUE_MISMATCH = "value_mismatch"
    APPROVAL_INVALID = "approval_invalid"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ControllerRef(_Frozen):
    id: str
    protocol: Protocol
    endpoint: str
    validated: bool = False


class TagRef(_Frozen):
    name: str
    address: str
    kind: TagKind
    critical_to_quality: bool = False
    unit: str | None = None


class ApprovalConsidered(_Frozen):
    """The approved change record the verdict was reached against, and why it did not match."""

    id: str
    valid_from: datetime
    valid_until: datetime
    approved_by: str
    change_control_ref: str | None = None
    why_not_matched: str | None = None


class MonitoringGap(_Frozen):
    start: datetime
    end: datetime


class SuspectChange(_Frozen):
    """One detected change on one controller tag, with its verdict against change control."""

    schema_: Literal["otwatch.change/1"] = Field(default="otwatch.change/1", alias="schema")
    event_id: str
    seq: int = Field(ge=0)
    agent_id: str
    site: str
    line: str
    controller: ControllerRef
    tag: TagRef
    old_value: TagValue = None
    new_value: TagValue = None
    occurred_at: datetime
    detected_at: datetime
    change_kind: ChangeKind
    verdict: Verdict
    verdict_reason: str = ""
    approval: ApprovalConsidered | None = None
    context: dict[str, TagValue] = Field(default_factory=dict)
    actor: str | None = None
    gap: MonitoringGap | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def kafka_key(self) -> bytes:
        """`<site>/<controller>`: one controller's changes stay in one partition, in order."""
        return f"{self.site}/{self.controller.id}".encode()

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()
