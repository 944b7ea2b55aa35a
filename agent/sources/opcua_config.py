"""OPC UA controller and tag settings (validated at start-up, never connecting)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agent.config_base import ControllerBase, TagBase


class OpcuaTag(TagBase):
    #: `nsu=<namespace uri>;s=<id>` (resolved on every connect) or `ns=<index>;...`.
    node: str = Field(min_length=3)


class OpcuaControllerConfig(ControllerBase):
    protocol: Literal["opcua"]
    endpoint: str = Field(pattern=r"^opc\.tcp://")
    #: Largest number of nodes in one Read request (servers cap operations per request).
    max_nodes_per_read: int = Field(default=1000, ge=1)
    tags: list[OpcuaTag] = Field(min_length=1)
