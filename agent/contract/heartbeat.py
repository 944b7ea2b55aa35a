"""The heartbeat contract (schema ``otwatch.heartbeat/1``): an agent's liveness and backlog.

The agent sends one to ``otwatch.agents.heartbeat`` every interval (`agent.heartbeat`), keyed by
``agent_id``; the classifier reads them to tell a silent agent from a quiet plant.
``spool_depth`` and ``last_seq`` let it see a backlog and, with the events' ``seq``, a gap.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

HEARTBEAT_SCHEMA = "otwatch.heartbeat/1"


class Heartbeat(BaseModel):
    """One agent's liveness and backlog at ``sent_at`` (schema ``otwatch.heartbeat/1``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["otwatch.heartbeat/1"] = Field(default="otwatch.heartbeat/1", alias="schema")
    agent_id: str
    version: str
    #: Where the agent runs, so a silence finding names a site even before any event.
    site: str | None = None
    #: Set by the sender at send time when the builder leaves it empty.
    sent_at: datetime | None = None
    controllers_up: int = Field(ge=0)
    controllers_total: int = Field(ge=0)
    spool_depth: int = Field(ge=0)
    last_seq: int = Field(ge=0)

    def kafka_key(self) -> bytes:
        return self.agent_id.encode()

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()
