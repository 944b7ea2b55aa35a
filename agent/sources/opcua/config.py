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

Relative file paths are resolved against ``base_dir`` from the validation context (the
config file's directory, see `agent.config.load_agent_config`), else the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from agent.config_base import ControllerBase, TagBase, _Strict


class OpcuaTag(TagBase):
    #: `nsu=<namespace uri>;s=<id>` (resolved on every connect) or `ns=<index>;...`.
    node: str = Field(min_length=3)
    #: Overrides the controller's sampling interval for this tag (subscribe mode).
    sampling_interval_ms: float | None = Field(default=None, ge=0.0)

    @property
    def event_address(self) -> str:
        """The node as configured (``nsu=...;s=...``): stable across namespace renumbering."""
        return self.node


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

    policy: Literal["None", "Basic256Sha256"] = "None"
    mode: Literal["Sign", "SignAndEncrypt"] | None = None
    certificate: Path | None = None
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

    username: str | None = Field(default=None, min_length=1)
    password_env: str | None = Field(default=None, min_length=1)
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
    protocol: Literal["opcua"]
    endpoint: str = Field(pattern=r"^opc\.tcp://")
    #: subscribe: monitored items (the default); poll: read every ``poll_interval_s``.
    mode: Literal["subscribe", "poll"] = "subscribe"
    publishing_interval_ms: float = Field(default=250.0, gt=0.0, le=60_000.0)
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
    tags: list[OpcuaTag] = Field(min_length=1)

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
