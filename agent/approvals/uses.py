"""The use of a single-use approval, as the agent records it on Kafka.

The agent keeps which single-use approvals are used up in its state directory
(`agent.approvals.state`), and that is lost with the directory (a replaced disk, a re-imaged
host). So each use is also published, through the agent's spool, to a compacted topic
(``otwatch.approvals.used`` by default), keyed by the approval id, *before* the event that
used it: the spool holds the use and the event in one transaction and the publisher sends
the use, and waits for the broker's acknowledgement, before it sends anything behind it
(`agent.publisher`). An event published as authorized therefore always has its use on the
topic. On start the agent reads the topic back (`agent.approvals.topic.UsedApprovalsSource`)
and, until it has read it to its end, no single-use approval authorises.

A record on the topic can only withdraw an approval, never grant one: a forged use makes a
change unapproved (a record someone looks at), not authorised. A tombstone is ignored for the
same reason (a use is never undone).

Example of a record (key ``CR-2026-0042``)::

    {"approval_id": "CR-2026-0042", "used_at": "2026-11-23T09:12:00Z",
     "controller": "press-01", "tag": "temperature_sp", "agent_id": "edge-01"}
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

#: The JSON schema name, for readers that share the topic with other tools.
SCHEMA = "otwatch.approval-use/1"


class ApprovalUse(BaseModel):
    """One use of a single-use approval: which, when (the change's time), where, by whom."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    approval_id: str = Field(min_length=1, max_length=256)
    used_at: AwareDatetime
    controller: str | None = None
    tag: str | None = None
    agent_id: str | None = None
    schema_: str = Field(default=SCHEMA, alias="schema")

    @field_validator("used_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def kafka_key(self) -> bytes:
        """Keyed by approval id: compaction keeps one use per approval."""
        return self.approval_id.encode("utf-8")

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode("utf-8")

    def used_at_text(self) -> str:
        """The time as the single-use state file keeps it."""
        return self.used_at.isoformat()
