"""The ticket connectors' config (YAML), validated at start; secrets read from the environment
or a file, held as `SecretStr` (never printed, logged or put in an error).

Example (``config/tickets.yaml``)::

    records_url: https://records.plant.example          # every ticket links back here
    backoff: {initial_s: 1, max_s: 300, retry_after_max_s: 3600}
    metrics_port: 9468                                    # otwatch_tickets_* (0: off)
    connectors:
      thehive:
        url: https://thehive.example
        api_key: {env: OTWATCH_THEHIVE_API_KEY}
        inbound_secret: {file: /etc/otwatch/thehive-inbound.secret}
      servicenow:
        url: https://acme.service-now.com
        user: otwatch.integration
        password: {env: OTWATCH_SERVICENOW_PASSWORD}
        table: sn_si_incident                            # or incident
      jira:
        url: https://acme.atlassian.net
        email: otwatch@acme.example
        api_token: {file: /etc/otwatch/jira.token}
        project: SEC
      webhook:
        url: https://qms.example/hooks/otwatch
        secret: {env: OTWATCH_WEBHOOK_SECRET}            # whsec_<base64>

A connector is enabled by being listed (``enabled: false`` keeps its settings but turns it
off). Each one acts on records as its service user (``service_user``, default
``svc-<system>``, a user with the role ``integration``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator


class TicketsConfigError(ValueError):
    """The tickets config is wrong; the message names the file, the key and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Secret(_Strict):
    """Where a secret is: an environment variable or a file (its content, stripped)."""

    #: The environment variable that holds the secret (give this or ``file``).
    env: str | None = None
    #: The file that holds the secret, stripped of surrounding whitespace (or ``env``).
    file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Secret:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' (a variable name) or 'file' (a path)")
        return self

    def read(self, key: str) -> SecretStr:
        if self.env is not None:
            value = os.environ.get(self.env, "")
            where = f"environment variable {self.env}"
        else:
            assert self.file is not None
            try:
                value = self.file.read_text(encoding="utf-8")
            except OSError as exc:
                raise TicketsConfigError(f"{key}: cannot read secret file {self.file} "
                                         f"({exc.strerror})") from exc
            where = f"file {self.file}"
        if not value.strip():
            raise TicketsConfigError(f"{key}: the {where} is empty or not set")
        return SecretStr(value.strip())


class Backoff(_Strict):
    """Capped exponential backoff between tries; a ``Retry-After`` is waited at least."""

    #: Seconds before the second try; each further failure doubles the wait ...
    initial_s: float = Field(1.0, gt=0)
    #: ... up to this many seconds.
    max_s: float = Field(300.0, gt=0)
    #: The longest ``Retry-After`` a tool's answer is obeyed up to (a longer one is cut).
    retry_after_max_s: float = Field(3600.0, gt=0)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before try ``attempt + 1`` (``attempt`` tries failed so far, from 1)."""
        base = min(self.max_s, self.initial_s * 2.0 ** min(attempt - 1, 60))
        if retry_after is None:
            return base
        return max(base, min(retry_after, self.retry_after_max_s))


class _Connector(_Strict):
    #: false keeps the connector's settings but turns it off.
    enabled: bool = True
    #: A connector enabled on a database that already holds records: true (the default) opens
    #: a ticket for every record there is, false only for records opened from now on.
    backfill: bool = True
    #: The tool's base URL (the webhook: the URL the events are posted to), http(s).
    url: str
    #: The records user (role ``integration``) the connector acts as; empty: ``svc-<system>``.
    service_user: str = ""
    #: The secret the tool signs its inbound webhooks with (no inbound without it).
    inbound_secret: Secret | None = None
    #: Seconds one request to the tool may take before it counts as failed (and is retried).
    timeout_s: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _http_url(self) -> _Connector:
        if not self.url.startswith(("https://", "http://")):
            raise ValueError(f"url {self.url!r} is not an http(s) URL")
        return self


class WebhookConfig(_Connector):
    #: The key the events are signed with (Standard Webhooks, ``whsec_<base64>``), shared
    #: with the receiver.
    secret: Secret


class TheHiveConfig(_Connector):
    #: TheHive API key (sent as ``Authorization: Bearer``).
    api_key: Secret
    #: The TheHive organisation the alerts go to (``X-Organisation``); empty: the key's own.
    organisation: str = ""
    #: The alerts' ``type``.
    alert_type: str = "otwatch"
    #: The alerts' ``source`` (with the record id as ``sourceRef``, one alert per record).
    source: str = "otwatch"


class ServiceNowConfig(_Connector):
    #: The ServiceNow integration user (basic authentication).
    user: str
    #: That user's password.
    password: Secret
    #: The table tickets are opened in: Security Incident Response or plain incidents.
    table: Literal["sn_si_incident", "incident"] = "sn_si_incident"


class JiraConfig(_Connector):
    #: The Atlassian account's e-mail address (basic authentication with ``api_token``).
    email: str
    #: The account's API token.
    api_token: Secret
    #: The key of the Jira project the issues are opened in.
    project: str
    #: The issue type opened for a record.
    issue_type: str = "Task"


class Connectors(_Strict):
    #: Any QMS or tool, by signed webhook (Standard Webhooks).
    webhook: WebhookConfig | None = None
    #: TheHive 5 alerts.
    thehive: TheHiveConfig | None = None
    #: ServiceNow (Security Incident Response) incidents.
    servicenow: ServiceNowConfig | None = None
    #: Jira Cloud issues.
    jira: JiraConfig | None = None

    def enabled(self) -> dict[str, _Connector]:
        found = {"webhook": self.webhook, "thehive": self.thehive,
                 "servicenow": self.servicenow, "jira": self.jira}
        return {name: c for name, c in found.items() if c is not None and c.enabled}


class TicketsConfig(_Strict):
    """The ticket connectors: each listed system gets a ticket for every record and is kept
    up to date with its changes, through a transactional outbox."""

    #: The records web service's address: every ticket links to ``<records_url>/records/<id>``.
    records_url: str
    #: The waits between tries of a failed request.
    backoff: Backoff = Field(default_factory=Backoff)
    #: Seconds between looks at the audit trail for record changes to send.
    interval_s: float = Field(1.0, gt=0)
    #: Prometheus metrics of ``otwatch-tickets`` (0: not served).
    metrics_host: str = "127.0.0.1"
    #: The port of those metrics (0: not served).
    metrics_port: int = Field(9468, ge=0, le=65535)
    #: The systems tickets are opened in; a system is on when it is listed here.
    connectors: Connectors = Field(default_factory=Connectors)

    def service_user(self, system: str) -> str:
        found = self.connectors.enabled().get(system)
        return (found.service_user if found and found.service_user else f"svc-{system}")

    def record_url(self, record_id: str) -> str:
        return f"{self.records_url.rstrip('/')}/records/{record_id}"


def parse(data: Any, source: str = "<tickets config>") -> TicketsConfig:
    try:
        return TicketsConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise TicketsConfigError(f"{source}: {key}: {first['msg']} "
                                 f"({exc.error_count()} problem(s) in all)") from None


def load(path: Path) -> TicketsConfig:
    """Read and validate ``path``; `TicketsConfigError` names the file and key."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TicketsConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise TicketsConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse(data or {}, str(path))
