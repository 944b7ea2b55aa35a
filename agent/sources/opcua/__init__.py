"""OPC UA: the agent's subscribing (or polling) source, and everything it knows about OPC UA.

    config.py     OpcuaControllerConfig, OpcuaTag, security and auth settings (validated)
    plan.py       chunk sizes (the configured cap or the server's limit); describe_plan:
                  the reads as ``otwatch-agent check`` prints them (pure)
    decode.py     variants -> tag values (`plain_value`), audit events -> AuditedWrite
    security.py   secure channel and user identity: certificates, trust list, password
    session.py    one session, the transport: connect, resolve the nodes, chunked reads
    resolve.py    every tag's node per session: ``nsu=`` node ids and browse paths
    subscribe.py  one subscription per session: monitored items in, partial Readings out
    audit.py      ActorMatcher: audit write events paired with data changes (pure)
    source.py     OpcuaSource: the session loop, with reconnect and capped backoff;
                  OpcuaSubscriptionSource (the default) and OpcuaPollingSource (`Source`)

Everything but the config and the plan loads asyncua; it is imported on first use, so that
loading a config (``otwatch-agent check``) never loads the protocol library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from agent.sources.opcua.config import OpcuaAuth, OpcuaControllerConfig, OpcuaSecurity, OpcuaTag
from agent.sources.opcua.plan import chunk_size, describe_plan

if TYPE_CHECKING:
    from agent.sources.opcua.decode import plain_value
    from agent.sources.opcua.resolve import resolve_node_id
    from agent.sources.opcua.source import (
        OpcuaPollingSource,
        OpcuaSource,
        OpcuaSubscriptionSource,
    )

__all__ = [
    "OpcuaAuth",
    "OpcuaControllerConfig",
    "OpcuaPollingSource",
    "OpcuaSecurity",
    "OpcuaSource",
    "OpcuaSubscriptionSource",
    "OpcuaTag",
    "chunk_size",
    "describe_plan",
    "plain_value",
    "resolve_node_id",
]

_LAZY = {
    "OpcuaPollingSource": "agent.sources.opcua.source",
    "OpcuaSource": "agent.sources.opcua.source",
    "OpcuaSubscriptionSource": "agent.sources.opcua.source",
    "plain_value": "agent.sources.opcua.decode",
    "resolve_node_id": "agent.sources.opcua.resolve",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
