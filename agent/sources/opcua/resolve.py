"""Resolve every tag's node for one session: ``nsu=`` node ids and browse paths.

Runs on every new session, because a program download can restart the server and renumber its
namespaces (and vendor tools renumber numeric node ids). A ``node`` address names its namespace
by URI and is mapped to this session's index; a ``browse_path`` is translated by the server
(TranslateBrowsePathsToNodeIds from the Objects folder, in chunks of the server's own limit),
each element's namespace URI mapped to its index first.

A tag that does not resolve (its namespace is not on the server, or no node has that path) is
not a reason to drop the session or the other tags: it comes back in ``unresolved`` with the
reason, and the agent reports it as a monitoring gap on that tag.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.object_ids import ObjectIds

from agent.errors import TagConfigError
from agent.sources.opcua.config import OpcuaControllerConfig, OpcuaTag, PathElement

#: The node id of each resolved tag in this session, and the tags that did not resolve with
#: why. Node ids, not asyncua `Node` objects: 60,000 of those cost ~6 MB for nothing.
Resolved = tuple[list[tuple[OpcuaTag, ua.NodeId]], dict[str, str]]

_OBJECTS = ua.NodeId(ua.Int32(ObjectIds.ObjectsFolder))
_HIERARCHICAL = ua.NodeId(ua.Int32(ObjectIds.HierarchicalReferences))
# asyncua types its booleans as a marker class; the values are Python bools.
_FALSE, _TRUE = cast(ua.Boolean, False), cast(ua.Boolean, True)


def resolve_node_id(address: str, namespaces: list[str], controller: str, tag: str) -> ua.NodeId:
    """`nsu=<uri>;s=X` or `ns=<i>;s=X` to a NodeId for this session's namespace array."""
    if not address.startswith("nsu="):
        return ua.NodeId.from_string(address)
    uri, _, rest = address[4:].partition(";")
    try:
        index = namespaces.index(uri)
    except ValueError:
        raise TagConfigError(
            f"namespace {uri!r} of tag {tag} is not on the server (it has {len(namespaces)} "
            "namespaces); fix the node address or the server",
            controller=controller,
            tag=tag,
        ) from None
    return ua.NodeId.from_string(f"ns={index};{rest}")


def relative_path(elements: Sequence[PathElement], namespaces: list[str]) -> ua.RelativePath:
    """The path's elements as a RelativePath over hierarchical references (KeyError: a
    namespace URI the server does not have)."""
    path = ua.RelativePath()
    for element in elements:
        index = 0 if element.namespace_uri is None else namespaces.index(element.namespace_uri)
        step = ua.RelativePathElement()
        step.ReferenceTypeId = _HIERARCHICAL
        step.IsInverse = _FALSE
        step.IncludeSubtypes = _TRUE
        step.TargetName = ua.QualifiedName(element.name, index)
        path.Elements.append(step)
    return path


async def resolve_tags(
    client: Client, config: OpcuaControllerConfig, namespaces: list[str], per_call: int
) -> Resolved:
    """Every tag's node in this session; tags that do not resolve, with the reason."""
    nodes: dict[str, ua.NodeId] = {}
    unresolved: dict[str, str] = {}
    by_path: list[tuple[OpcuaTag, ua.BrowsePath]] = []
    for tag in config.tags:
        if tag.node is not None:
            try:
                nodes[tag.name] = resolve_node_id(tag.node, namespaces, config.id, tag.name)
            except TagConfigError as exc:
                unresolved[tag.name] = str(exc)
            continue
        elements = config.browse_path_of(tag)
        missing = [e.namespace_uri for e in elements
                   if e.namespace_uri is not None and e.namespace_uri not in namespaces]
        if missing:
            unresolved[tag.name] = (f"browse path {tag.browse_path}: namespace {missing[0]!r} "
                                    "is not on the server")
            continue
        browse = ua.BrowsePath()
        browse.StartingNode = _OBJECTS
        browse.RelativePath = relative_path(elements, namespaces)
        by_path.append((tag, browse))
    for start in range(0, len(by_path), per_call):
        chunk = by_path[start : start + per_call]
        results = await client.uaclient.translate_browsepaths_to_nodeids([b for _, b in chunk])
        for (tag, _), result in zip(chunk, results, strict=True):
            if result.StatusCode.is_good() and result.Targets:
                target = result.Targets[0].TargetId  # a local node: as a plain NodeId, so
                # that it reads as audit events name it (no nsu=/srv= suffix)
                nodes[tag.name] = ua.NodeId(
                    target.Identifier, target.NamespaceIndex, target.NodeIdType)
            else:
                status = ua.StatusCode(result.StatusCode.value).name
                unresolved[tag.name] = (f"browse path {tag.browse_path} no longer resolves on "
                                        f"the server ({status})")
    return [(t, nodes[t.name]) for t in config.tags if t.name in nodes], unresolved
