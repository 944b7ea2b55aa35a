"""Kafka client settings, for every otwatch process: servers, TLS, SASL, compression, timeouts,
topic names.

Secrets never live in the config: a TLS key password and a SASL password come from an
environment variable or a file named in the config, and are read only when the client kwargs
are built. ``KafkaSettings`` is never logged with its secrets because it holds none. Errors are
`agent.kafka.errors.KafkaSettingsError`, naming the key and the fix.

Each process names itself to the broker: a config without ``kafka.client_id`` gets the
process's name (`KafkaSettings.named`: ``otwatch-agent``, ``otwatch-classifier``, ...).

Example::

    >>> settings = KafkaSettings(bootstrap_servers="kafka-1:9093", enable_idempotence=True,
    ...     tls=TlsSettings(ca_file=Path("/etc/otwatch/ca.pem"))).named("otwatch-agent")
    >>> producer = AIOKafkaProducer(**settings.producer_kwargs())
"""

from __future__ import annotations

import importlib.util
import os
import ssl
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.kafka.errors import KafkaSettingsError

#: The client id of a process that does not name itself.
DEFAULT_CLIENT_ID = "otwatch"


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _read_secret(key: str, env: str | None, file: Path | None) -> str | None:
    """Resolve a secret from an environment variable or a file; the error names the key."""
    if env is not None:
        value = os.environ.get(env)
        if value is None:
            raise KafkaSettingsError(
                f"kafka.{key}_env names the environment variable {env!r}, which is not set: "
                f"export {env}=... for the agent, or use kafka.{key}_file"
            )
        return value
    if file is not None:
        try:
            return file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise KafkaSettingsError(
                f"kafka.{key}_file: cannot read {file} ({exc.strerror}): "
                "fix the path or the file's permissions"
            ) from exc
    return None


class TlsSettings(_Settings):
    """TLS to the broker; ``cert_file`` + ``key_file`` turn on mutual TLS."""

    #: CA certificate (PEM) that signed the brokers' certificates; unset: the system's CAs.
    ca_file: Path | None = None
    #: Client certificate (PEM) for mutual TLS, with ``key_file``.
    cert_file: Path | None = None
    #: The client certificate's private key (PEM).
    key_file: Path | None = None
    #: Environment variable holding the private key's password, if it has one.
    key_password_env: str | None = None
    #: Or a file holding that password (never the password itself in the config).
    key_password_file: Path | None = None
    #: Check that the broker's certificate names the host connected to (turn off only for tests).
    check_hostname: bool = True

    @model_validator(mode="after")
    def _pairs(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError(
                "tls.cert_file and tls.key_file go together (mutual TLS needs both): "
                "set both or neither"
            )
        if self.key_password_env is not None and self.key_password_file is not None:
            raise ValueError("set tls.key_password_env or tls.key_password_file, not both")
        return self

    def ssl_context(self) -> ssl.SSLContext:
        """The client context; file problems are reported with the setting that names the file."""
        from aiokafka.helpers import create_ssl_context

        for key in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, key)
            if path is not None and not Path(path).is_file():
                raise KafkaSettingsError(f"kafka.tls.{key}: no such file {path}: fix the path")
        password = _read_secret("tls.key_password", self.key_password_env, self.key_password_file)
        try:
            ctx: ssl.SSLContext = create_ssl_context(
                cafile=self.ca_file,
                certfile=self.cert_file,
                keyfile=self.key_file,
                password=password,
            )
        except ssl.SSLError as exc:
            raise KafkaSettingsError(
                f"kafka.tls: cannot load ca_file/cert_file/key_file ({exc.reason or exc}): "
                "check they are PEM files, that the key matches the certificate and the "
                "key password setting"
            ) from exc
        ctx.check_hostname = self.check_hostname
        return ctx


class SaslSettings(_Settings):
    """SASL authentication; the password comes from ``password_env`` or ``password_file``."""

    #: SASL mechanism the brokers accept.
    mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    #: SASL user name.
    username: str
    #: Environment variable holding the SASL password.
    password_env: str | None = None
    #: Or a file holding it (exactly one of the two).
    password_file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SaslSettings:
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError(
                "sasl needs exactly one of password_env (an environment variable name) or "
                "password_file (a file holding the password); a literal password is not accepted"
            )
        return self

    def password(self) -> str:
        secret = _read_secret("sasl.password", self.password_env, self.password_file)
        assert secret is not None  # the validator guarantees one source
        return secret


class TopicNames(_Settings):
    """Every topic of the product, with its default name; every one configurable.

    One set for every process (each reads and writes the ones it needs), so a site that renames
    a topic renames it in one place of each config.
    """

    #: Changes that are not approved (agent → classifier).
    suspect: str = "otwatch.changes.suspect"
    #: Approved changes, the audit trail (agent); the classifier reads it for the agents' seq.
    authorized: str = "otwatch.changes.authorized"
    #: Agent liveness and backlog (agent → classifier).
    heartbeat: str = "otwatch.agents.heartbeat"
    #: Approved change records from MES/QMS change control (→ agent).
    approvals: str = "otwatch.approvals"
    #: Uses of single-use approvals, keyed by approval id (agent → agent, compacted): read back
    #: on start so that a lost state directory cannot make a used approval usable again.
    approvals_used: str = "otwatch.approvals.used"
    #: Classified alerts for security operations (classifier → SIEM).
    alerts: str = "otwatch.alerts"
    #: Master record lifecycle events for quality / QMS integration (classifier).
    records: str = "otwatch.records"
    #: Messages the classifier could not read, with the reason.
    dlq: str = "otwatch.dlq"
    #: Lot holds and release freezes for the MES (containment relay).
    containment: str = "otwatch.containment"


Compression = Literal["none", "gzip", "snappy", "lz4", "zstd"]


class KafkaSettings(_Settings):
    """How a process talks to Kafka.

    ``enable_idempotence`` is on by default (real Kafka); turn it off for brokers that lack
    InitProducerId support as aiokafka uses it, such as the embedded Tansu broker.
    """

    #: Brokers to start from, ``host:port[,host:port...]``.
    bootstrap_servers: str = "127.0.0.1:9092"
    #: How this client names itself to the broker (its logs, quotas, ACLs). Unset: the name the
    #: process gives (`named`), or ``otwatch``.
    client_id: str | None = None
    #: Idempotent producer (no duplicates on retry); off for brokers without it (Tansu).
    enable_idempotence: bool = True
    #: Producer compression; snappy, lz4 and zstd need the package cramjam.
    compression: Compression = "none"
    #: How long a request to a broker may take before it is retried.
    request_timeout_ms: int = Field(default=30_000, ge=1_000)
    #: Pause before a failed request is retried.
    retry_backoff_ms: int = Field(default=200, ge=10)
    #: Cluster metadata is refreshed at least this often.
    metadata_max_age_ms: int = Field(default=60_000, ge=1_000)
    #: How long the producer waits to fill a batch before sending it.
    linger_ms: int = Field(default=5, ge=0)
    #: Largest producer batch per partition, in bytes.
    max_batch_size: int = Field(default=262_144, ge=1_024)
    #: Cap of the doubling pause between attempts to reach the brokers after an outage.
    reconnect_backoff_max_s: float = Field(default=30.0, gt=0)
    #: Create missing topics at start (turn off where topics are managed by the platform team).
    create_topics: bool = True
    #: Partitions of a topic the process creates.
    topic_partitions: int = Field(default=6, ge=1)
    #: Replicas of a topic the process creates (3 on a production cluster).
    topic_replication_factor: int = Field(default=1, ge=1)
    tls: TlsSettings | None = None
    sasl: SaslSettings | None = None

    def named(self, client_id: str) -> KafkaSettings:
        """These settings, with ``client_id`` as the client id unless the config names one."""
        return self if self.client_id else self.model_copy(update={"client_id": client_id})

    def security_protocol(self) -> str:
        tls = "SSL" if self.tls is not None else "PLAINTEXT"
        if self.sasl is None:
            return tls
        return "SASL_SSL" if tls == "SSL" else "SASL_PLAINTEXT"

    def _common_kwargs(self) -> dict[str, object]:
        kwargs: dict[str, object] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": self.client_id or DEFAULT_CLIENT_ID,
            "request_timeout_ms": self.request_timeout_ms,
            "retry_backoff_ms": self.retry_backoff_ms,
            "metadata_max_age_ms": self.metadata_max_age_ms,
            "security_protocol": self.security_protocol(),
        }
        if self.tls is not None:
            kwargs["ssl_context"] = self.tls.ssl_context()
        if self.sasl is not None:
            kwargs["sasl_mechanism"] = self.sasl.mechanism
            kwargs["sasl_plain_username"] = self.sasl.username
            kwargs["sasl_plain_password"] = self.sasl.password()
        return kwargs

    def producer_kwargs(self) -> dict[str, object]:
        """Keyword arguments for ``aiokafka.AIOKafkaProducer``: acks=all, in order per partition."""
        _check_codec(self.compression)
        return {
            **self._common_kwargs(),
            "acks": "all",
            "enable_idempotence": self.enable_idempotence,
            "compression_type": None if self.compression == "none" else self.compression,
            "linger_ms": self.linger_ms,
            "max_batch_size": self.max_batch_size,
        }

    def consumer_kwargs(self) -> dict[str, object]:
        """Keyword arguments for ``aiokafka.AIOKafkaConsumer`` (no group: the caller adds one)."""
        return self._common_kwargs()

    def admin_kwargs(self) -> dict[str, object]:
        """Keyword arguments for ``aiokafka.admin.AIOKafkaAdminClient``."""
        return self._common_kwargs()


def _check_codec(compression: Compression) -> None:
    """aiokafka needs the optional package cramjam for snappy, lz4 and zstd."""
    if compression in ("none", "gzip"):
        return
    if importlib.util.find_spec("cramjam") is None:
        raise KafkaSettingsError(
            f"kafka.compression={compression!r} needs the package cramjam "
            "(pip install cramjam), or set kafka.compression to 'gzip' or 'none'"
        )
