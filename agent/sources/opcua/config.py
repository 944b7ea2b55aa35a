"""OPC UA controller and tag settings (validated at start-up, never connecting).

Example (one controller of ``config/agent.yaml``)::

    - id: oven-01
      protocol: opcua
      endpoint: opc.tcp://10.0.0.5:4840
      mode: subscribe                # subscribe (default) | poll
      publishing_interval_ms: 250
      sampling_interval_ms: 100
      security:
        policy: Basic256Sha256       # None (default) | Basic256Sha256
        mode: SignAndEncrypt         # Sign | SignAndEncrypt (required unless policy None)
        certificate: /etc/otwatch/opcua-client.der
        private_key: /etc/otwatch/opcua-client.pem
        trust: [/etc/otwatch/opcua-trusted/]   # server certificates (files or directories)
      auth:
        username: otwatch
        password_env: OTWATCH_OVEN_PASSWORD    # or password_file: /etc/otwatch/oven-password
      namespaces:                    # aliases for browse path elements in other namespaces
        di: http://opcfoundation.org/UA/DI/
      tags:
        - {name: temperature_sp, kind: setpoint, node: "nsu=urn:vendor:oven;s=Zone1.TempSP"}
        - name: hold_pressure        # by browse path: what an engineer reads in their client
          kind: setpoint
          browse_path: /Objects/PressLine/Setpoints/HoldPressure
          namespace_uri: urn:vendor:press   # the namespace of elements without an alias

A tag names its node by ``node`` (``nsu=<uri>;s=<id>``, resolved to the session's namespace
index on every connect) or by ``browse_path`` (resolved on every connect with
TranslateBrowsePathsToNodeIds, from the Objects folder): vendor tools renumber numeric node ids
and namespace indexes on a program download; a browse path with namespace URIs survives that.
An element of a path is a browse name, in the tag's ``namespace_uri``, or ``alias:Name`` (an
alias from the controller's ``namespaces``), or ``0:Name`` (the standard OPC UA namespace).

Relative file paths are resolved against ``base_dir`` from the validation context (the
config file's directory, see `agent.config.load_agent_config`), else the working directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from agent.config_base import ControllerBase, TagBase, TagSettings, _Strict

#: Where every browse path starts (the standard Objects folder, ns=0;i=85).
PATH_ROOT = "Objects"
#: The prefix of an element in the standard OPC UA namespace (index 0 on every server).
STANDARD_PREFIX = "0"


@dataclass(frozen=True, slots=True)
class PathElement:
    """One browse name of a path: its namespace URI (None: the standard namespace) and name."""

    namespace_uri: str | None
    name: str


def path_elements(path: str) -> list[str]:
    """``/Objects/A/B`` -> ``["A", "B"]``; a ValueError naming the fix otherwise."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "" or parts[1] != PATH_ROOT:
        raise ValueError(
            f"browse_path {path!r} must start at the Objects folder and name a node under it; "
            "fix: write it as /Objects/<Folder>/.../<Variable>"
        )
    elements = parts[2:]
    if any(not e.strip() for e in elements):
        raise ValueError(f"browse_path {path!r} has an empty element; fix: remove the extra '/'")
    return elements


def parse_browse_path(
    path: str, namespace_uri: str | None, aliases: dict[str, str]
) -> list[PathElement]:
    """The elements of a browse path with their namespace URIs (pure: no server)."""
    out = []
    for element in path_elements(path):
        prefix, sep, name = element.partition(":")
        if not sep:
            if namespace_uri is None:
                raise ValueError(
                    f"browse_path element {element!r} has no namespace; fix: add namespace_uri "
                    "to the tag (its PLC's namespace URI), or write alias:Name with an alias "
                    "from the controller's namespaces (0:Name for the standard namespace)"
                )
            out.append(PathElement(namespace_uri, element))
        elif prefix == STANDARD_PREFIX:
            out.append(PathElement(None, name))
        elif prefix in aliases:
            out.append(PathElement(aliases[prefix], name))
        else:
            raise ValueError(
                f"browse_path element {element!r}: {prefix!r} is not an alias of the "
                f"controller's namespaces ({', '.join(aliases) or 'none'}); fix: add it under "
                "namespaces: or correct the prefix"
            )
    return out


class OpcuaTagSettings(TagSettings):
    #: `nsu=<namespace uri>;s=<id>` (resolved on every connect) or `ns=<index>;...`.
    node: str | None = Field(default=None, min_length=3)
    #: Or the node's browse path from the Objects folder, resolved on every connect.
    browse_path: str | None = Field(default=None, min_length=3)
    #: The namespace of the browse path's elements that name no alias.
    namespace_uri: str | None = Field(default=None, min_length=1)
    #: Overrides the controller's sampling interval for this tag (subscribe mode).
    sampling_interval_ms: float | None = Field(default=None, ge=0.0)

    @model_validator(mode="after")
    def _one_address(self) -> OpcuaTagSettings:
        if (self.node is None) == (self.browse_path is None):
            raise ValueError(
                "a tag needs exactly one of node (nsu=<uri>;s=<id>) or browse_path "
                "(/Objects/...); fix: keep one of them"
            )
        if self.namespace_uri is not None and self.browse_path is None:
            raise ValueError("namespace_uri is for browse_path; fix: remove it, or use "
                             "node: nsu=<uri>;s=<id>")
        if self.browse_path is not None:
            path_elements(self.browse_path)
        return self


class OpcuaTag(TagBase):
    """A validated OPC UA tag (`OpcuaTagSettings`), kept as a row (`agent.config_rows`)."""

    __settings__: ClassVar[type[BaseModel]] = OpcuaTagSettings
    __slots__ = ("browse_path", "namespace_uri", "node", "sampling_interval_ms")
    node: str | None
    browse_path: str | None
    namespace_uri: str | None
    sampling_interval_ms: float | None

    @property
    def event_address(self) -> str:
        """The node as configured (``nsu=...;s=...`` or the browse path): stable across
        namespace renumbering."""
        return self.node or str(self.browse_path)


def _resolve(path: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    if path.is_absolute():
        return path
    return (Path(base) / path).resolve() if base is not None else path.resolve()


def _existing_file(path: Path, info: ValidationInfo) -> Path:
    path = _resolve(path, info)
    if not path.is_file():
        raise ValueError(f"file {path} does not exist; fix: correct the path or create the file")
    return path


class OpcuaSecurity(_Strict):
    """Secure channel settings; ``policy: None`` is the default and takes no other key."""

    #: Security policy of the secure channel.
    policy: Literal["None", "Basic256Sha256"] = "None"
    #: Sign or SignAndEncrypt (required with Basic256Sha256).
    mode: Literal["Sign", "SignAndEncrypt"] | None = None
    #: The agent's client certificate (DER or PEM).
    certificate: Path | None = None
    #: The client certificate's private key.
    private_key: Path | None = None
    #: Server certificates (or the CAs that issued them): files or directories of .der/.pem.
    trust: list[Path] = Field(default_factory=list)
    #: Accept any server certificate (testing only; must be set explicitly).
    trust_any_server: bool = False

    @field_validator("certificate", "private_key")
    @classmethod
    def _file_exists(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        return None if path is None else _existing_file(path, info)

    @field_validator("trust")
    @classmethod
    def _trust_exists(cls, paths: list[Path], info: ValidationInfo) -> list[Path]:
        resolved = [_resolve(p, info) for p in paths]
        for path in resolved:
            if not path.exists():
                raise ValueError(
                    f"{path} does not exist; fix: list server certificate files or directories"
                )
        return resolved

    @model_validator(mode="after")
    def _consistent(self) -> OpcuaSecurity:
        if self.policy == "None":
            extra = [k for k in ("mode", "certificate", "private_key") if getattr(self, k)]
            if extra:
                raise ValueError(
                    f"policy None takes no {', '.join(extra)}; fix: set policy: Basic256Sha256 "
                    "or remove those keys"
                )
            return self
        missing = [k for k in ("mode", "certificate", "private_key") if getattr(self, k) is None]
        if missing:
            raise ValueError(
                f"policy {self.policy} needs {', '.join(missing)}; fix: add mode (Sign or "
                "SignAndEncrypt), certificate and private_key (client certificate files)"
            )
        if not self.trust and not self.trust_any_server:
            raise ValueError(
                f"policy {self.policy} needs a trust list; fix: add trust: [<server certificate "
                "file or directory>] (or trust_any_server: true, for testing only)"
            )
        return self


class OpcuaAuth(_Strict):
    """User authentication: anonymous unless ``username`` is set; never a literal password."""

    #: User name to sign in with (unset: anonymous).
    username: str | None = Field(default=None, min_length=1)
    #: Environment variable holding the password.
    password_env: str | None = Field(default=None, min_length=1)
    #: Or a file holding it (exactly one of the two with a username).
    password_file: Path | None = None

    @field_validator("password_file")
    @classmethod
    def _file_exists(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        return None if path is None else _existing_file(path, info)

    @model_validator(mode="after")
    def _one_password_source(self) -> OpcuaAuth:
        sources = [k for k in ("password_env", "password_file") if getattr(self, k) is not None]
        if self.username is None and sources:
            raise ValueError(f"{sources[0]} without username; fix: add username or remove it")
        if self.username is not None and len(sources) != 1:
            raise ValueError(
                "username needs exactly one of password_env or password_file; fix: set one "
                "(a password is never written in the config itself)"
            )
        return self


class OpcuaControllerConfig(ControllerBase):
    #: ``opcua``.
    protocol: Literal["opcua"]
    #: The server's endpoint URL, ``opc.tcp://host:port/path``.
    endpoint: str = Field(pattern=r"^opc\.tcp://")
    #: subscribe: monitored items (the default); poll: read every ``poll_interval_s``.
    mode: Literal["subscribe", "poll"] = "subscribe"
    #: How often the server sends a subscription's notifications.
    publishing_interval_ms: float = Field(default=250.0, gt=0.0, le=60_000.0)
    #: How often the server samples each monitored value.
    sampling_interval_ms: float = Field(default=100.0, ge=0.0, le=60_000.0)
    #: Attribute writes to the acting user from AuditWriteUpdateEventType, where offered.
    audit_events: bool = True
    #: Largest number of nodes in one Read request (the server's own limit applies if smaller).
    max_nodes_per_read: int = Field(default=1000, ge=1)
    #: Largest number of monitored items created in one call (the server's own limit applies if
    #: smaller): one call per chunk, each bounded by ``timeout_s``.
    max_items_per_call: int = Field(default=1000, ge=1)
    security: OpcuaSecurity = Field(default_factory=OpcuaSecurity)
    auth: OpcuaAuth = Field(default_factory=OpcuaAuth)
    #: Aliases of namespace URIs for browse path elements (``alias:Name``).
    namespaces: dict[str, str] = Field(default_factory=dict)
    #: The controller's nodes to read (at least one).
    tags: list[OpcuaTag] = Field(min_length=1)

    @model_validator(mode="after")
    def _paths_parse(self) -> OpcuaControllerConfig:
        for i, tag in enumerate(self.tags):
            if tag.browse_path is not None:
                try:
                    parse_browse_path(tag.browse_path, tag.namespace_uri, self.namespaces)
                except ValueError as exc:
                    raise ValueError(f"tags[{i}] ({tag.name}): {exc}") from None
        return self

    def browse_path_of(self, tag: OpcuaTag) -> list[PathElement]:
        """The tag's browse path elements (a tag with a node id has none)."""
        if tag.browse_path is None:
            return []
        return parse_browse_path(tag.browse_path, tag.namespace_uri, self.namespaces)

    @property
    def look_interval_s(self) -> float:
        """Longest time a value written now can take to reach the agent: a poll, or (with
        subscriptions) the slowest sampling plus one publishing interval."""
        if self.mode == "poll":
            return self.poll_interval_s
        sampling = max(
            (t.sampling_interval_ms for t in self.tags if t.sampling_interval_ms is not None),
            default=0.0,
        )
        return (max(sampling, self.sampling_interval_ms) + self.publishing_interval_ms) / 1000.0
