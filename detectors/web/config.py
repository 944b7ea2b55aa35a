"""The records service's configuration (``python -m detectors.web --config FILE``).

Example (``config/records-ui.yaml``)::

    service:
      db: records.db                 # SQLite path or postgresql:// DSN (or --db)
      host: 127.0.0.1                # loopback unless a reverse proxy or TLS is in front
      port: 8080
      tls:                           # HTTPS with this certificate; cookies are then Secure
        cert: /etc/otwatch/records-ui.crt
        key: /etc/otwatch/records-ui.key
    identity:                        # see detectors.identity.config
      idle_timeout_s: 900
    tickets: tickets.yaml            # optional: inbound webhooks of the ticket connectors
"""

from __future__ import annotations

import ssl
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from detectors.identity import IdentityConfigError, IdentitySettings
from detectors.records import WorkflowSettings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsSection(_Strict):
    """The service's certificate (chain first) and private key, PEM files."""

    #: Certificate chain (PEM), the server's first.
    cert: Path
    #: Its private key (PEM).
    key: Path

    def context(self) -> ssl.SSLContext:
        """A server TLS context (TLS 1.2 or newer) with this certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise IdentityConfigError(
                f"service.tls: cannot load cert {str(self.cert)!r} / key {str(self.key)!r} "
                f"({exc}); fix: point both at readable PEM files that belong together"
            ) from None
        return context


class ServiceSection(_Strict):
    """Where the records service listens and which database it serves."""

    #: Records database: SQLite path or postgresql:// DSN (or --db; default as otwatch-records).
    db: str | None = None
    #: PostgreSQL schema of the records tables (unset: the default search path).
    schema_name: str | None = Field(default=None, alias="schema")
    #: Address to listen on (loopback unless a reverse proxy or TLS is in front).
    host: str = "127.0.0.1"
    #: Port to listen on.
    port: int = Field(default=8080, ge=0, le=65535)
    tls: TlsSection | None = None


class RecordsServiceConfig(_Strict):
    service: ServiceSection = Field(default_factory=ServiceSection)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    workflow: WorkflowSettings = Field(default_factory=WorkflowSettings)
    #: The ticket connectors' config (`detectors.tickets.config`): the systems with an
    #: ``inbound_secret`` may report back through ``/api/tickets/{system}/webhook``.
    tickets: Path | None = None


def load_service_config(path: Path | str) -> RecordsServiceConfig:
    """Read and validate the service's config; relative TLS paths are taken from the file's
    directory. Errors name the file, the key and the fix."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        config = RecordsServiceConfig.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise IdentityConfigError(f"{path}: cannot read ({exc}); fix: check the file") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise IdentityConfigError(f"{path}: {problems}") from None
    tls = config.service.tls
    if tls is not None:
        base = path.parent
        tls = TlsSection(cert=base / tls.cert, key=base / tls.key)
        config = config.model_copy(update={
            "service": config.service.model_copy(update={"tls": tls})})
    if config.tickets is not None:
        config = config.model_copy(update={"tickets": path.parent / config.tickets})
    return config
