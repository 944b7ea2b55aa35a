"""Standard Webhooks signatures (https://www.standardwebhooks.com), both ways.

Outbound, every webhook carries ``webhook-id`` (stable across retries: the receiver dedupes on
it), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` = ``v1,`` + base64 of
HMAC-SHA256 over ``<id>.<timestamp>.<body>``. Inbound, the same three headers are checked: the
signature against the shared secret, the timestamp within five minutes of now (the
library's tolerance), and the id against the ids already accepted (the caller's job: see
`detectors.tickets.inbound`).

The spec authors' own library (``standardwebhooks``, no dependencies) does the HMAC and the
constant-time comparison; this module only translates its errors and the malformed headers it
lets through as `ValueError`.
"""

from __future__ import annotations

import binascii
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class SignatureRefused(Exception):
    """An inbound webhook whose signature, timestamp or headers do not hold."""


def signer(secret: str) -> Webhook:
    """A signer/verifier for a ``whsec_<base64>`` secret (or bare base64)."""
    try:
        return Webhook(secret)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is 'whsec_' followed by base64 (at least 24 random "
                         "bytes): generate one with `openssl rand -base64 32`") from exc


def sign_headers(hook: Webhook, msg_id: str, body: bytes, now: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``."""
    stamp = now.astimezone(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": hook.sign(msg_id, stamp, body.decode()),
    }


def verify(hook: Webhook, body: bytes, headers: dict[str, str]) -> None:
    """Raise `SignatureRefused` unless the headers sign ``body`` within the tolerance."""
    try:
        hook.verify(body, headers, json_parse=False)
    except WebhookVerificationError as exc:
        raise SignatureRefused(str(exc)) from exc
    except (ValueError, binascii.Error) as exc:  # "v1" without a comma, bad base64, bad UTF-8
        raise SignatureRefused("malformed webhook-signature header") from exc
