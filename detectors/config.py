"""The classifier's configuration (`config/classifier.yaml`), validated at start-up.

The Kafka client settings and the topic names are the shared ones of `agent.kafka.settings`
(same keys, TLS and SASL, same topic defaults as the agent), so one way of writing a broker
connection serves every process. Without ``kafka.client_id`` the classifier names itself
``otwatch-classifier``.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from agent.contract.signing import key_id_of, load_public_key
from agent.kafka.settings import KafkaSettings, TopicNames
from detectors.errors import ClassifierConfigError
from detectors.records.checkpoints import Interval

#: How the classifier names itself to the broker unless ``kafka.client_id`` says otherwise.
CLIENT_ID = "otwatch-classifier"
#: What Kafka accepts as a topic name.
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassifierSection(_Strict):
    """The classifier's consumer group, records database, criteria and trusted agent keys."""

    #: The classifier's Kafka consumer group (instances sharing it share the partitions).
    group_id: str = "otwatch-classifier"
    #: A SQLite file path, or a PostgreSQL DSN (postgresql://...).
    records_db: str = "records.db"
    #: The classification criteria file (`config/criteria.yaml`).
    criteria: Path = Path("criteria.yaml")
    #: Events read and written to the records database in one transaction (one commit, with
    #: its fsync on SQLite, per batch: at 500 the commit was a fifth of the classifier's time).
    batch_size: int = Field(default=2000, ge=1, le=10_000)
    #: The longest a fetch waits at the broker for new events. Kafka answers a waiting fetch
    #: as soon as data arrives, but the embedded Tansu broker answers only when the wait is
    #: over: at aiokafka's default of 500 ms that wait was most of the pipeline's latency
    #: (p99 254 ms from produce to consume, against 56 ms at 100 ms and 18 ms at 20 ms).
    #: Idle, a shorter wait costs only more empty fetches (20 a second at 50 ms).
    fetch_max_wait_ms: int = Field(default=50, ge=1, le=10_000)
    #: How long the group waits for a silent member before giving its partitions away.
    session_timeout_ms: int = Field(default=10_000, ge=3_000, le=300_000)
    #: Optional JSON file with the process's assigned partitions and counters (for operators
    #: and tests); rewritten on every assignment change and every ``integrity.check_interval_s``.
    status_file: Path | None = None
    #: A message larger than this is not parsed: it goes to the dead-letter topic with its size,
    #: its SHA-256 and its first bytes. The agent keeps its events far below (large values are
    #: truncated with their hash); Kafka's own default limit is 1 MiB.
    max_message_bytes: int = Field(default=1_048_576, ge=4_096, le=64 * 2**20)
    #: Every event must carry a valid Ed25519 signature by a trusted agent key; an unsigned
    #: one (an ``otwatch.change/1`` agent, or anyone else who can write to the topic) becomes a
    #: ``forged_event`` finding instead of the record it claims. False accepts unsigned events
    #: while agents are being upgraded; a signature that is there is checked either way.
    require_signed_events: bool = True
    #: Trusted agent keys, key id to base64 public key, as ``otwatch-agent keys show`` prints.
    agent_keys: dict[str, str] = Field(default_factory=dict)
    #: ``/healthz`` on the metrics port fails (503) once the suspect consumer's read loop has
    #: handed over no batch for this long (it does every half second while it runs): a stuck
    #: consumer, for the liveness probe to restart.
    stall_after_s: float = Field(default=300.0, ge=10.0)
    #: A folder of agent key files ``*.pub``, read at start: each the output of
    #: ``otwatch-agent keys show`` (or a bare base64 public key), e.g. ``edge-01.pub``.
    agent_keys_dir: Path | None = None

    @field_validator("records_db", "criteria", "status_file", "agent_keys_dir")
    @classmethod
    def _no_nul(cls, value: str | Path | None) -> str | Path | None:
        if value is not None and "\x00" in str(value):
            raise ValueError("a path cannot hold a NUL character")
        return value

    @field_validator("agent_keys")
    @classmethod
    def _keys_are_keys(cls, keys: dict[str, str]) -> dict[str, str]:
        for key_id, text in keys.items():
            problem = key_problem(key_id, text)
            if problem is not None:
                raise ValueError(f"{key_id!r}: {problem}")
        return keys

    def fetch_kwargs(self) -> dict[str, int]:
        """Consumer fetch sizes that go with ``max_message_bytes``.

        Per partition, a fetch asks for at most one message's worth; a larger message still
        arrives whole (Kafka returns a first batch over the limit rather than stall, and the
        embedded Tansu broker returned 120 MB messages whatever was asked), and is then refused
        by size. Across partitions, one fetch is bounded at 16 MiB or one message.
        """
        return {
            "max_partition_fetch_bytes": self.max_message_bytes,
            "fetch_max_bytes": max(self.max_message_bytes, 16 * 2**20),
            "fetch_max_wait_ms": self.fetch_max_wait_ms,
        }


class IntegritySection(_Strict):
    """The classifier's own findings: silent agents and gaps in an agent's ``seq``."""

    #: Open findings for silent agents and seq gaps.
    enabled: bool = True
    #: An agent whose heartbeat stops this long (with controllers up) opens a finding.
    silence_after_s: float = Field(default=35.0, gt=0)
    #: A missing ``seq`` becomes a finding after this long (events travel in partitions).
    seq_gap_grace_s: float = Field(default=10.0, ge=0)
    #: How often silence and gaps are checked.
    check_interval_s: float = Field(default=1.0, gt=0, le=60)
    #: Where the reader of heartbeats and seqs starts when the process starts: ``latest`` reads
    #: what the agents stamped from the process's start on, one cut for every partition.
    start_from: Literal["earliest", "latest"] = "latest"


class MetricsSection(_Strict):
    """The classifier's Prometheus endpoint (``/metrics``, ``/healthz``)."""

    #: Address the Prometheus endpoint listens on.
    host: str = "127.0.0.1"
    #: Its port (0: no endpoint).
    port: int = Field(default=9465, ge=0, le=65535)


class AlertsSection(_Strict):
    """What the classifier writes on the alerts topic (`detectors.alert_formats`)."""

    #: ``otwatch``: the native ``otwatch.alert/1`` JSON; ``ocsf``: OCSF 1.1.0 Detection
    #: Findings. The SIEM relay (``otwatch-siem``) reads either.
    format: Literal["otwatch", "ocsf"] = "otwatch"


class SyslogTls(_Strict):
    """TLS to the syslog collector (RFC 5425); without ``ca_file`` the system's CAs."""

    #: CA certificate (PEM) of the collector; unset: the system's CAs.
    ca_file: Path | None = None
    #: A client certificate and its key, for a collector that asks for one (mutual TLS).
    cert_file: Path | None = None
    #: The client certificate's private key (PEM).
    key_file: Path | None = None
    #: Check that the collector's certificate names its host.
    check_hostname: bool = True

    @model_validator(mode="after")
    def _pair(self) -> SyslogTls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (mutual TLS needs both): "
                             "set both or neither")
        return self


class SiemSection(_Strict):
    """The SIEM relay (``otwatch-siem``): alerts from the alerts topic to a syslog collector
    as CEF, in RFC 5424 messages over TLS (or plain TCP), committed once the collector took
    them."""

    #: The collector's host name or address (required by ``otwatch-siem``).
    host: str | None = None
    #: 6514 is syslog over TLS (RFC 5425).
    port: int = Field(default=6514, ge=1, le=65535)
    #: ``tls`` (RFC 5425) or plain ``tcp``.
    transport: Literal["tls", "tcp"] = "tls"
    tls: SyslogTls = Field(default_factory=SyslogTls)
    #: The relay's own consumer group on the alerts topic (the classifier's is not touched).
    group_id: str = "otwatch-siem"
    #: Where a new group starts: ``earliest`` forwards the alerts the topic still holds.
    start_from: Literal["earliest", "latest"] = "earliest"
    #: Alerts read, sent and committed together (at most this many in flight).
    batch_size: int = Field(default=500, ge=1, le=10_000)
    #: Syslog facility of the messages.
    facility: Literal[
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2",
        "local3", "local4", "local5", "local6", "local7",
    ] = "auth"
    #: The HOSTNAME of each message (default: this host's name).
    hostname: str | None = None
    #: APP-NAME of each RFC 5424 message.
    app_name: str = Field(default="otwatch", min_length=1, max_length=48)
    #: Longest syslog message sent; texts are cut to fit (RFC 5425 collectors take 8192).
    max_message_bytes: int = Field(default=8192, ge=4096, le=1_048_576)
    #: How long a connection to the collector may take.
    connect_timeout_s: float = Field(default=10.0, gt=0, le=300)
    #: How long the collector may take to acknowledge a batch before the connection is
    #: treated as broken (and the batch sent again on a new one).
    ack_timeout_s: float = Field(default=30.0, gt=0, le=600)
    #: Prometheus metrics of the relay (0: none).
    metrics_host: str = "127.0.0.1"
    #: Its port.
    metrics_port: int = Field(default=9466, ge=0, le=65535)

    @field_validator("host")
    @classmethod
    def _host(cls, host: str | None) -> str | None:
        if host is not None and (not host or any(c.isspace() for c in host) or "/" in host):
            raise ValueError(f"{host!r} is not a host name or address")
        return host


class CheckpointsSection(_Strict):
    """Signed checkpoints of the records audit trail (`detectors.records.checkpoints`)."""

    #: The Ed25519 key that signs the trail's head (``otwatch-records checkpoints keygen``);
    #: kept outside the database, mode 0600. ``$OTWATCH_CHECKPOINT_KEY`` overrides it. Unset:
    #: no checkpoints are made (verify then cannot see a cut tail or a recomputed chain).
    key_file: Path | None = None
    #: The public key (``<key_file>.pub``), for ``otwatch-records verify``.
    public_key_file: Path | None = None
    #: A checkpoint after this many new trail entries ...
    every_entries: int = Field(default=1000, ge=1, le=1_000_000)
    #: ... or this long after the last one, when anything was written since.
    every_minutes: float = Field(default=5.0, gt=0, le=24 * 60)
    #: Where each checkpoint is published (a copy outside the database).
    topic: str = Field(default="otwatch.checkpoints", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    #: How often the publisher looks at the trail's head.
    check_interval_s: float = Field(default=5.0, gt=0, le=300)

    def interval(self) -> Interval:
        return Interval(entries=self.every_entries, seconds=self.every_minutes * 60)


class ClassifierConfig(_Strict):
    classifier: ClassifierSection = Field(default_factory=ClassifierSection)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings, validate_default=True)
    #: Reads suspect, authorized (for the agents' ``seq`` only; never recorded) and heartbeat;
    #: writes alerts, records and dlq.
    topics: TopicNames = Field(default_factory=TopicNames)
    metrics: MetricsSection = Field(default_factory=MetricsSection)
    integrity: IntegritySection = Field(default_factory=IntegritySection)
    alerts: AlertsSection = Field(default_factory=AlertsSection)
    #: Read by ``otwatch-siem`` only.
    siem: SiemSection = Field(default_factory=SiemSection)
    checkpoints: CheckpointsSection = Field(default_factory=CheckpointsSection)

    @field_validator("kafka")
    @classmethod
    def _named(cls, kafka: KafkaSettings) -> KafkaSettings:
        return kafka.named(CLIENT_ID)

    @field_validator("topics")
    @classmethod
    def _legal_topics(cls, topics: TopicNames) -> TopicNames:
        """A name Kafka does not allow is never created: sends to it would wait for ever."""
        for key, name in topics.model_dump().items():
            if not _TOPIC_NAME.fullmatch(name):
                raise ValueError(
                    f"topics.{key}: {name!r} is not a Kafka topic name (letters, digits, '.', "
                    "'_' and '-', at most 249 characters)"
                )
        return topics


def key_problem(key_id: str | None, text: str) -> str | None:
    """What is wrong with a trusted agent key (or None): not a public key, or filed under
    another key id than its own (events signed with it would never be found trusted)."""
    try:
        own = key_id_of(load_public_key(text))
    except ValueError as exc:
        return f"{exc}; fix: copy public_key from `otwatch-agent keys show`"
    if key_id is not None and key_id != own:
        return f"this public key's id is {own!r}; fix: file it under {own!r}"
    return None


def load_classifier_config(path: Path | str) -> ClassifierConfig:
    """Read a classifier config; relative paths are resolved against the file's directory."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError, RecursionError) as exc:
        # (PyYAML raises ValueError for a date that does not exist, e.g. 2020-02-30)
        reason = _printable(" ".join(str(exc).split()))
        raise ClassifierConfigError(
            f"{path}: cannot read ({reason}); fix: check the file"
        ) from None
    if not isinstance(data, dict):
        raise ClassifierConfigError(
            f"{path}: the file holds a {type(data).__name__}, not a mapping; fix: write it as "
            "sections (classifier:, kafka:, topics:, metrics:, integrity:, alerts:, siem:, "
            "checkpoints:)"
        )
    try:
        config = ClassifierConfig.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(_printable(str(p)) for p in e['loc'])}: "
            f"{_printable(e['msg'].removeprefix('Value error, '))}; fix: "
            + ("remove or correct this key" if e["type"] == "extra_forbidden"
               else "correct the value")
            for e in exc.errors(include_url=False)
        ]
        raise ClassifierConfigError("\n".join(lines)) from None
    return _resolve(config, path.parent)


def _printable(text: str) -> str:
    """A key or message as it can be shown on one line (control characters escaped)."""
    return text if text.isprintable() else repr(text)[1:-1]


def _resolve(config: ClassifierConfig, base: Path) -> ClassifierConfig:
    section = config.classifier
    criteria = section.criteria if section.criteria.is_absolute() else base / section.criteria
    db = section.records_db
    if "://" not in db and not Path(db).is_absolute():
        db = str((base / db).resolve())
    status = section.status_file
    if status is not None and not status.is_absolute():
        status = (base / status).resolve()
    keys_dir = section.agent_keys_dir
    if keys_dir is not None and not keys_dir.is_absolute():
        keys_dir = (base / keys_dir).resolve()
    resolved = section.model_copy(update={
        "criteria": criteria.resolve(), "records_db": db, "status_file": status,
        "agent_keys_dir": keys_dir,
    })
    tls = config.siem.tls
    tls = tls.model_copy(update={
        key: (base / path).resolve() for key in ("ca_file", "cert_file", "key_file")
        if (path := getattr(tls, key)) is not None and not path.is_absolute()
    })
    siem = config.siem.model_copy(update={"tls": tls})
    checkpoints = config.checkpoints.model_copy(update={
        key: (base / path).resolve() for key in ("key_file", "public_key_file")
        if (path := getattr(config.checkpoints, key)) is not None and not path.is_absolute()
    })
    return config.model_copy(update={"classifier": resolved, "siem": siem,
                                      "checkpoints": checkpoints})


def check_records_db(target: str) -> None:
    """A SQLite ``classifier.records_db`` whose folder is missing or not writable is refused
    here, by ``check`` and before ``run`` starts, rather than failing at the first open.
    (A PostgreSQL DSN is checked by connecting: ``run`` waits for the database.)"""
    if "://" in target and not target.startswith("sqlite:///"):
        return
    path = Path(target.removeprefix("sqlite://") if target.startswith("sqlite:///") else target)
    folder = path.parent
    fix = "or point classifier.records_db (or --records-db) at a writable folder"
    if path.is_dir():
        raise ClassifierConfigError(
            f"classifier.records_db: {path} is a folder; fix: name a file in it, e.g. "
            f"{path / 'records.db'}"
        )
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ClassifierConfigError(
            f"classifier.records_db: the folder {folder} {what}; fix: create it "
            f"(mkdir -p {folder}) {fix}"
        )
    problem = _unwritable(path)
    if problem is not None:
        raise ClassifierConfigError(
            f"classifier.records_db: cannot write {path} ({problem}); fix: give the service's "
            f"user write access to {folder} {fix}"
        )


def _unwritable(path: Path) -> str | None:
    """Why the database file (and SQLite's journal beside it) cannot be written, if so: tried
    for real, as permission bits do not tell for root or on a read-only mount."""
    try:
        if path.exists():
            with path.open("r+b"):
                pass
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
