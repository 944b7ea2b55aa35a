"""The keys under which the records service keeps its parts (one module, so that every
other module of the service reads the same ones)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web

from detectors.identity import Authenticator, Identity, IdentitySettings
from detectors.tickets.inbound import InboundHook
from detectors.web._gate import RecordsGate
from detectors.web._verify import StoreCheck


@dataclass(frozen=True)
class ServiceParts:
    """What the handlers share: the store's thread, sign-in, settings, clock, TLS."""

    gate: RecordsGate
    authenticator: Authenticator
    settings: IdentitySettings
    clock: Callable[[], datetime]
    tls: bool
    #: Ticket systems whose inbound webhook is enabled (an ``inbound_secret`` in the config).
    inbound: Mapping[str, InboundHook] = field(default_factory=dict)
    #: The newest whole-store tamper check (the records page shows it while fresh).
    checked: StoreCheck = field(default_factory=StoreCheck)


PARTS = web.AppKey("parts", ServiceParts)
#: Who the request is from (None: nobody signed in), decided once by the security policy.
IDENTITY: web.RequestKey[Identity | None] = web.RequestKey("identity")
#: Why a credential the request offered was refused ("" if none was refused).
REFUSED = web.RequestKey("refused", str)
