"""The heartbeat contract (schema ``otwatch.heartbeat/2``; ``/1`` still read): liveness, backlog
and health.

The agent sends one to ``otwatch.agents.heartbeat`` every interval (`agent.heartbeat`), keyed by
``agent_id``; the classifier reads them to tell a silent agent from a quiet plant.
``spool_depth`` and ``last_seq`` let it see a backlog and, with the events' ``seq``, a gap.

Version 2 adds what a running agent knows is wrong with it: ``health`` is ``degraded`` when it
has set events aside that the broker refuses for good (``spool_quarantined``, still in its
spool's quarantine table) or cannot read some configured tags (``tags_unreadable``), and
``problems`` says each in words. A ``/1`` heartbeat reads as ``ok`` with no problems.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

HEARTBEAT_SCHEMA = "otwatch.heartbeat/2"
HEARTBEAT_SCHEMA_V1 = "otwatch.heartbeat/1"
#: Every version a reader must accept, oldest first.
HEARTBEAT_SCHEMAS = (HEARTBEAT_SCHEMA_V1, HEARTBEAT_SCHEMA)

#: ``ok``: nothing the agent knows of is wrong; ``degraded``: see ``problems``.
Health = Literal["ok", "degraded"]


class Heartbeat(BaseModel):
    """One agent's liveness, backlog and health at ``sent_at`` (schema ``otwatch.heartbeat/2``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["otwatch.heartbeat/1", "otwatch.heartbeat/2"] = Field(
        default="otwatch.heartbeat/2", alias="schema"
    )
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
    health: Health = "ok"
    #: Events the broker refused for good, set aside in the spool's quarantine (not sent).
    spool_quarantined: int = Field(default=0, ge=0)
    #: Configured tags the agent cannot read right now (e.g. a Modbus exception answer).
    tags_unreadable: int = Field(default=0, ge=0)
    #: What is wrong, in words, one entry a problem (empty when ``health`` is ``ok``).
    problems: list[str] = Field(default_factory=list)

    def kafka_key(self) -> bytes:
        return self.agent_id.encode()

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()
