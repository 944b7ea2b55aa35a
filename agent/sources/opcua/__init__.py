"""OPC UA: the agent's subscribing (and polling) source, and everything it knows about OPC UA.

    config.py     OpcuaControllerConfig, OpcuaTag, security and auth settings (validated)
    security.py   secure channel and user identity: certificates, trust list, password
    session.py    one session (the transport): connect, resolve nodes, chunked reads
    subscribe.py  one subscription per session: monitored items in, partial Readings out
    audit.py      ActorMatcher: audit write events paired with data changes (pure)
    source.py     OpcuaSource: the session loop; OpcuaSubscriptionSource, OpcuaPollingSource

Everything but the config loads asyncua; it is imported on first use, so that loading a
config (``otwatch-agent check``) never loads the protocol library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from agent.sources.opcua.config import OpcuaAuth, OpcuaControllerConfig, OpcuaSecurity, OpcuaTag

if TYPE_CHECKING:
    from agent.sources.opcua.session import plain_value, resolve_node_id
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
    "plain_value",
    "resolve_node_id",
]

_LAZY = {
    "OpcuaPollingSource": "agent.sources.opcua.source",
    "OpcuaSource": "agent.sources.opcua.source",
    "OpcuaSubscriptionSource": "agent.sources.opcua.source",
    "plain_value": "agent.sources.opcua.session",
    "resolve_node_id": "agent.sources.opcua.session",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
