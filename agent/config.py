"""The agent's configuration: pydantic models, loaded and checked once at start-up.

Loading never connects to anything. Every error names the file, the key and the fix::

    config/agent.yaml: controllers[0].tags[2].data_type: Input should be 'int16', 'uint16', ...
      fix: use one of the listed values

Relative paths in the file (state directory, approvals files) are resolved against the
directory that holds the config file, so a config can be moved together with its files.

Each protocol's controller and tag settings live with its source
(`agent.sources.modbus.config`, `agent.sources.opcua.config`); `AgentConfig` composes them
into one list of controllers, told apart by ``protocol``, and re-exports them here.
"""

from __future__ import annotations

import ctypes
import gc
import json
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from agent.config_base import ContextRole, ControllerBase, RecipeGroup, TagBase, _Strict
from agent.contract.limits import (
    DEFAULT_HEAD_CHARS,
    DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_MAX_VALUE_BYTES,
    EventLimits,
)
from agent.errors import ConfigError
from agent.kafka.settings import KafkaSettings, TopicNames
from agent.sources.modbus.config import (
    ModbusControllerConfig,
    ModbusTag,
    check_register_overlaps,
    check_shared_lines,
)
from agent.sources.opcua.config import OpcuaControllerConfig, OpcuaTag

__all__ = [
    "AgentConfig",
    "ContextRole",
    "ControllerBase",
    "ControllerConfig",
    "EventsSection",
    "ModbusControllerConfig",
    "ModbusTag",
    "OpcuaControllerConfig",
    "OpcuaTag",
    "RecipeGroup",
    "TagBase",
    "load_agent_config",
]

ControllerConfig = Annotated[
    ModbusControllerConfig | OpcuaControllerConfig, Field(discriminator="protocol")
]


class AgentSection(_Strict):
    """Who this agent is and where it keeps its state."""

    #: This agent's name: in every event, heartbeat and record (one per edge host).
    id: str = Field(min_length=1)
    #: The plant or site this agent watches, as the records name it.
    site: str = Field(min_length=1)
    #: Where the agent keeps its spool, baseline and signing key (writable, kept across restarts).
    state_dir: Path = Path("/var/lib/otwatch/agent")


class ApprovalsSection(_Strict):
    """Where approvals come from and how far they are trusted (README, "Threat model").

    Approvals from the Kafka topic must be signed by a trusted key unless the site says
    otherwise (``topic_require_signed``): anyone with produce rights on the broker can write
    the topic. Approvals from files are not (``require_signed: false``) unless the site sets
    it: whoever can write a file on the agent's host can also change this config, its trusted
    keys and its state, so a signature there protects against nothing such a person could not
    undo; sites whose files arrive from elsewhere (a share, a sync job) turn it on.
    """

    #: Approval files (YAML or JSON) read at start and on change.
    files: list[Path] = Field(default_factory=list)
    #: Every approval, from files and topic alike, must be signed by a trusted key.
    require_signed: bool = False
    #: Approvals from the topic must be signed by a trusted key (the default).
    topic_require_signed: bool = True
    #: Tolerance for clocks: a change this close outside an approval's window still matches.
    clock_skew_s: float = Field(default=30.0, ge=0.0)
    #: Base64 Ed25519 public keys whose signatures on approvals are trusted.
    trusted_keys: list[str] = Field(default_factory=list)
    #: Also follow the approvals Kafka topic (MES/QMS change control publishes there).
    from_topic: bool = False
    #: Record each use of a single-use approval on Kafka (topics.approvals_used) ahead of its
    #: event, and read the uses back on start: a lost state directory then cannot make a used
    #: approval usable again. Until they are read, no single-use approval authorises.
    record_uses_on_kafka: bool = True

    @field_validator("trusted_keys")
    @classmethod
    def _keys_decode(cls, keys: list[str]) -> list[str]:
        from agent.approvals.model import decode_public_key  # the approvals stack, when used

        for n, key in enumerate(keys):
            try:
                decode_public_key(key)
            except ValueError as exc:
                raise ValueError(f"trusted_keys[{n}]: {exc}; fix: paste the base64 public key "
                                 "`otwatch-agent approvals keygen` printed") from None
        return keys

    @model_validator(mode="after")
    def _keys_when_signed(self) -> ApprovalsSection:
        if self.trusted_keys:
            return self
        if self.require_signed:
            raise ValueError(
                "approvals.require_signed is true but approvals.trusted_keys is empty: no "
                "approval could ever be trusted; fix: add the change-control signer's public "
                "key (`otwatch-agent approvals keygen` makes a pair) to approvals.trusted_keys"
            )
        if self.from_topic and self.topic_require_signed:
            raise ValueError(
                "approvals.from_topic is on and approvals from the topic must be signed "
                "(approvals.topic_require_signed, true by default), but approvals.trusted_keys "
                "is empty: anyone who can write to the approvals topic could otherwise "
                "authorise any change; fix: add the change-control signer's public key "
                "(`otwatch-agent approvals keygen` makes a pair, `otwatch-agent approvals sign` "
                "signs) to approvals.trusted_keys, or, only if every writer of the topic is "
                "trusted, set approvals.topic_require_signed: false"
            )
        return self


class MetricsSection(_Strict):
    """The agent's Prometheus endpoint (``/metrics``, ``/healthz``)."""

    #: Address the Prometheus endpoint listens on (loopback unless scraped from elsewhere).
    host: str = "127.0.0.1"
    #: 0 turns the metrics endpoint off.
    port: int = Field(default=9464, ge=0, le=65535)


class SpoolSection(_Strict):
    """Bounds of the agent's durable spool (``<state_dir>/spool.db``): events wait there while
    Kafka is away. A full spool refuses new events (``otwatch_agent_spool_refused_total``,
    one ERROR per episode) and never drops the ones it holds."""

    #: Most events held at once.
    max_events: int = Field(default=1_000_000, ge=1_000)
    #: Most bytes of events held at once (512 MiB).
    max_bytes: int = Field(default=512 * 2**20, ge=2**20)


class HeartbeatSection(_Strict):
    """The agent's liveness message on ``topics.heartbeat``."""

    #: Seconds between two heartbeats (the classifier's integrity.silence_after_s must be longer).
    interval_s: float = Field(default=10.0, gt=0.0)


#: Kafka's default message limit (message.max.bytes, and aiokafka's max_request_size) less room
#: for the record batch around one event.
_KAFKA_MESSAGE_ROOM = 1_000_000
#: What an event needs beside its two values (names, times, verdict, approval, signature).
_EVENT_ENVELOPE_BYTES = 16 * 1024


class EventsSection(_Strict):
    """What the agent publishes: size limits (`agent.contract.limits`) and its signing key."""

    #: A value (old, new, context, snapshot) whose JSON is larger is truncated with its hash.
    max_value_bytes: int = Field(default=DEFAULT_MAX_VALUE_BYTES, ge=1024)
    #: No event is larger: the snapshot's values, then context, are left out to fit.
    max_event_bytes: int = Field(default=DEFAULT_MAX_EVENT_BYTES, ge=16 * 1024,
                                 le=_KAFKA_MESSAGE_ROOM)
    #: Characters of a truncated value kept as its ``head``.
    truncated_head_chars: int = Field(default=DEFAULT_HEAD_CHARS, ge=0, le=4096)
    #: The agent's Ed25519 signing key (base64 seed, mode 0600). Unset: ``<state_dir>/
    #: event-signing.key``, made on first start.
    signing_key_file: Path | None = None

    @model_validator(mode="after")
    def _values_fit_an_event(self) -> EventsSection:
        if 2 * self.max_value_bytes + _EVENT_ENVELOPE_BYTES > self.max_event_bytes:
            raise ValueError(
                f"max_value_bytes={self.max_value_bytes} leaves no room for two values in "
                f"max_event_bytes={self.max_event_bytes}; fix: make max_event_bytes at least "
                f"2 * max_value_bytes + {_EVENT_ENVELOPE_BYTES}"
            )
        if 6 * self.truncated_head_chars + 256 > self.max_value_bytes:
            raise ValueError(
                f"truncated_head_chars={self.truncated_head_chars} makes a truncated value "
                f"larger than max_value_bytes={self.max_value_bytes}; fix: lower it"
            )
        return self

    @property
    def limits(self) -> EventLimits:
        return EventLimits(
            max_value_bytes=self.max_value_bytes,
            max_event_bytes=self.max_event_bytes,
            head_chars=self.truncated_head_chars,
        )


class AgentConfig(_Strict):
    agent: AgentSection
    kafka: KafkaSettings = Field(default_factory=KafkaSettings, validate_default=True)
    topics: TopicNames = Field(default_factory=TopicNames)
    approvals: ApprovalsSection = Field(default_factory=ApprovalsSection)
    metrics: MetricsSection = Field(default_factory=MetricsSection)
    heartbeat: HeartbeatSection = Field(default_factory=HeartbeatSection)
    spool: SpoolSection = Field(default_factory=SpoolSection)
    events: EventsSection = Field(default_factory=EventsSection)
    #: The controllers this agent watches, each with ``protocol: modbus`` or ``protocol: opcua``.
    controllers: list[ControllerConfig] = Field(min_length=1)

    @field_validator("kafka")
    @classmethod
    def _named(cls, kafka: KafkaSettings) -> KafkaSettings:
        return kafka.named("otwatch-agent")  # unless kafka.client_id names it otherwise

    @model_validator(mode="after")
    def _unique_names(self) -> AgentConfig:
        _no_duplicates([c.id for c in self.controllers], "controllers", "controller id")
        for i, ctl in enumerate(self.controllers):
            _no_duplicates([t.name for t in ctl.tags], f"controllers[{i}].tags", "tag name")
            _recipes_name_known_tags(ctl, i)
            if isinstance(ctl, ModbusControllerConfig):
                check_register_overlaps(ctl, i)
        modbus = [(i, c) for i, c in enumerate(self.controllers)
                  if isinstance(c, ModbusControllerConfig)]
        check_shared_lines(modbus)
        return self

    def controller(self, controller_id: str) -> ModbusControllerConfig | OpcuaControllerConfig:
        for ctl in self.controllers:
            if ctl.id == controller_id:
                return ctl
        raise KeyError(controller_id)


def _no_duplicates(names: list[str], where: str, what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{where}: {what} {name!r} appears twice; give each a unique name")
        seen.add(name)


def _recipes_name_known_tags(
    ctl: ModbusControllerConfig | OpcuaControllerConfig, index: int
) -> None:
    names = {t.name: t for t in ctl.tags}
    claimed: dict[str, str] = {}
    for r, recipe in enumerate(ctl.recipes):
        for member in recipe.members:
            if member not in names:
                raise ValueError(
                    f"controllers[{index}].recipes[{r}] ({recipe.name}) names tag {member!r}, "
                    f"which {ctl.id} does not have; fix the name or add the tag"
                )
            if names[member].is_measurement:
                raise ValueError(
                    f"controllers[{index}].recipes[{r}] ({recipe.name}) names tag {member!r}, "
                    "a measurement (read as context, never a change); fix: give it kind: "
                    "recipe, or take it out of the recipe"
                )
            if member in claimed:
                raise ValueError(
                    f"controllers[{index}].recipes[{r}]: tag {member!r} is already in recipe "
                    f"{claimed[member]!r}; a tag belongs to one recipe"
                )
            claimed[member] = recipe.name


def load_agent_config(path: Path | str) -> AgentConfig:
    """Read, validate and resolve an agent config file; raise `ConfigError` on any problem."""
    path = Path(path)
    raw = _read_yaml(path)
    try:
        config = AgentConfig.model_validate(raw, context={"base_dir": path.parent})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc)) from None
    del raw
    _give_back_heap()
    return _resolve_paths(config, path.parent)


def _give_back_heap() -> None:
    """Return the heap the parsed file and its validation freed to the system.

    A config of 100,000 tags parses into ~100 MB of dicts and strings, all freed once the
    models are built; glibc keeps freed heap for reuse, so without a trim the agent's resident
    set stays ~35 MB higher for good. A no-op where the C library has no ``malloc_trim``.
    """
    gc.collect()
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is not None:
        trim(0)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read the config file ({exc.strerror}); fix: check the path"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); fix: save the file as "
            "UTF-8"
        ) from None
    try:
        data = _parse(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{path}: not valid YAML ({_yaml_problem(exc)}); fix: correct the syntax there"
        ) from None
    except (ValueError, TypeError, RecursionError) as exc:
        # PyYAML's constructors raise these for values it parsed but cannot build (a date
        # such as 2001-13-45) and for nesting deeper than the interpreter's stack.
        raise ConfigError(
            f"{path}: a value YAML cannot read ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())}); fix: quote it or correct it"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the file must be a YAML mapping with the keys agent, controllers, ..."
        )
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: what is wrong and where (PyYAML's text spans several)."""
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    mark = getattr(exc, "problem_mark", None)
    text = f"{context}: {problem}" if context else str(problem)
    if mark is not None:
        text += f" at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(text.split())


def _parse(text: str) -> Any:
    """YAML, parsed by libyaml when PyYAML has it; a JSON document (JSON is YAML) by `json`.

    A generated config for 50,000 tags costs pure-Python PyYAML ~45 s and ~400 MB of node
    objects; `json` reads the same file in a fraction of a second.
    """
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError:
            pass  # YAML flow style, not JSON: let the YAML parser say what is wrong
    return yaml.load(text, Loader=_SafeLoader)  # a safe loader: libyaml or pure Python


_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _resolve_paths(config: AgentConfig, base: Path) -> AgentConfig:
    def resolve(p: Path) -> Path:
        return p if p.is_absolute() else (base / p).resolve()

    agent = config.agent.model_copy(update={"state_dir": resolve(config.agent.state_dir)})
    approvals = config.approvals.model_copy(
        update={"files": [resolve(p) for p in config.approvals.files]}
    )
    key = config.events.signing_key_file
    events = config.events.model_copy(
        update={"signing_key_file": resolve(key) if key is not None else None}
    )
    return config.model_copy(update={"agent": agent, "approvals": approvals, "events": events})


_FIXES = {
    "extra_forbidden": "remove this key or correct its spelling",
    "missing": "add this key",
    "literal_error": "use one of the listed values",
    "enum": "use one of the listed values",
    "union_tag_invalid": "set protocol: modbus or protocol: opcua",
    "union_tag_not_found": "add protocol: modbus or protocol: opcua",
}


def format_validation_error(path: Path, exc: ValidationError) -> str:
    """One line per problem: `file: key: what is wrong; fix: what to do`."""
    lines = []
    for err in exc.errors(include_url=False):
        key = _dotted(err["loc"])
        msg = err["msg"]
        if "fix:" in msg:  # a validator that already says what to do
            lines.append(f"{path}: {key or '(top level)'}: {msg}")
            continue
        fix = _FIXES.get(err["type"], "correct the value")
        lines.append(f"{path}: {key or '(top level)'}: {msg}; fix: {fix}")
    return "\n".join(lines)


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("modbus", "opcua"):
            continue  # the discriminator's branch name is not a key in the file
        elif not _plain_key(part):
            out += f"[{part!r}]"  # a key with spaces, dots or control characters, as written
        else:
            out += f".{part}" if out else str(part)
    return out


def _plain_key(key: str) -> bool:
    return bool(key) and key.isprintable() and not any(c in key for c in " .[]'\"")
