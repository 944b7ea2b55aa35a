"""OPC UA read plans: how many nodes go in one request (pure: no connection, no asyncua).

A session reads every tag with chunked Read requests and creates its monitored items in
chunks. A chunk is the configured cap (``max_nodes_per_read``, ``max_items_per_call``)
unless the server announces a smaller limit of its own (``OperationLimits``): real PLC
servers refuse larger requests. `describe_plan` is the plan as ``otwatch-agent check``
prints it, for the sample config's oven-01::

    9 nodes, subscribed; reads in 1 request(s)
"""

from __future__ import annotations

from agent.sources.opcua.config import OpcuaControllerConfig


def chunk_size(configured: int, server_limit: int) -> int:
    """The configured cap, or the server's limit where it is smaller (0: the server has none)."""
    return min(configured, server_limit or configured)


def describe_plan(config: OpcuaControllerConfig) -> list[str]:
    """The controller's reads in words, as ``otwatch-agent check`` prints them (the server's
    own limits are not known before a session, so the configured cap counts)."""
    chunks = -(-len(config.tags) // config.max_nodes_per_read)
    how = "subscribed" if config.mode == "subscribe" else f"polled every {config.poll_interval_s} s"
    lines = [f"{len(config.tags)} nodes, {how}; reads in {chunks} request(s)"]
    paths = sum(1 for t in config.tags if t.browse_path is not None)
    if paths:
        lines.append(f"{paths} node(s) by browse path, resolved on every connect")
    return lines
