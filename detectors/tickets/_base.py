"""What every ticket connector shares: the ticket to open, the remote ticket it became, the
error tree, and one HTTP call that turns the remote tool's answer into one of those errors.

Errors (each says whether the outbox should try again):

- `RemoteUnavailable` (retry): connection refused or reset, a timeout, a 5xx, a 429
  (``retry_after`` from the ``Retry-After`` header, in seconds), a 401/403 (the outbox keeps
  trying, slowly, until the credentials are fixed: the record shows the error meanwhile);
- `RemoteRejected` (no retry): any other 4xx: the request itself is wrong for that tool.

Secrets are held as `pydantic.SecretStr` and go into headers only; an error message carries
the method, the path and the remote tool's message, never a header.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx


class TicketError(Exception):
    """A remote ticket tool did not do what was asked."""

    retryable = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RemoteUnavailable(TicketError):
    retryable = True


class RemoteRejected(TicketError):
    retryable = False


@dataclass(frozen=True, slots=True)
class TicketRequest:
    """The ticket to open for one master record: every ticket carries the NC id and the
    record's URL (and the record carries the ticket's id, key and URL back)."""

    record_id: str
    security_ticket: str | None
    record_url: str
    classification: str
    severity: str
    state: str
    title: str
    description: str
    observables: dict[str, str] = field(default_factory=dict)  # controller, endpoint, tag, user
    #: The trail entry this request comes from (a stable id for the change it reports).
    trail_seq: int = 0

    @property
    def joint(self) -> bool:
        return self.classification == "joint"


@dataclass(frozen=True, slots=True)
class RemoteTicket:
    """A ticket in the remote tool: its id (for the API), key (for people) and URL."""

    remote_id: str
    key: str = ""
    url: str = ""
    state: str = ""


class TicketConnector(Protocol):
    """One remote tool. `open_ticket` must be idempotent per record (a lookup before create,
    or an idempotency key the tool honours): the outbox may call it again after a crash."""

    system: str
    #: True for incident tools (a quality-only record gets no security ticket there).
    security_only: bool

    async def open_ticket(self, ticket: TicketRequest) -> RemoteTicket: ...

    async def report_state(self, ticket: TicketRequest, remote: RemoteTicket) -> None:
        """Tell the remote tool the record's new state (a comment, work note or event)."""
        ...

    async def aclose(self) -> None: ...


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds: delay-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def _remote_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        for key in ("message", "errorMessages", "errors", "error"):
            if body.get(key):
                return str(body[key])[:200]
    return str(body)[:200]


async def call(
    client: httpx.AsyncClient, system: str, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    """One request; a 2xx answer is returned, anything else raised as a `TicketError`."""
    try:
        response = await client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise RemoteUnavailable(f"{system}: {method} {path}: {type(exc).__name__}: {exc}") \
            from exc
    status = response.status_code
    if status < 300:
        return response
    what = f"{system}: {method} {path}: HTTP {status}: {_remote_message(response)}"
    if status == 429 or status >= 500:
        raise RemoteUnavailable(what, retry_after=retry_after_s(response.headers.get(
            "Retry-After")))
    if status in (401, 403):
        raise RemoteUnavailable(f"{what} (check the connector's credentials)")
    raise RemoteRejected(what)


def client_for(base_url: str, *, headers: dict[str, str] | None = None,
               auth: httpx.Auth | None = None, timeout_s: float = 10.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers, auth=auth,
                             timeout=timeout_s, follow_redirects=False)
