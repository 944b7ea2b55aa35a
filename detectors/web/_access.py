"""What a route needs (`Route`: its access and body type) and the refusals the security
policy raises; `detectors.web.routes` holds the table itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from detectors.records.permissions import Permission

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Anyone, signed in or not (sign-in page, health, the stylesheet).
PUBLIC = "public"
#: Any signed-in user, whatever their roles (sign-out, who am I).
SIGNED_IN = "signed in"
#: Anyone holding the connector's webhook secret: the request's Standard Webhooks signature
#: is its authentication (checked by the handler, `detectors.tickets.inbound`), not a session.
SIGNED_WEBHOOK = "signed webhook"
Access = Permission | str

#: Body types of state-changing routes.
JSON, FORM, NONE = "json", "form", ""
#: A form with a file (the attachment step's upload).
UPLOAD = "upload"


@dataclass(frozen=True)
class Route:
    """One endpoint: method, path, handler, who may call it, and the body it takes."""

    method: str
    path: str
    handler: Handler
    access: Access
    body: str = NONE


class SignInRequired(Exception):
    """No identity, or the credential offered was refused: 401 (API) / sign-in page."""


class AccessDenied(Exception):
    """Signed in, but this is not allowed (roles, CSRF, a token where a person must act)."""


class UnsupportedBody(Exception):
    """A state-changing request with a body type the route does not take (415)."""


ROUTE_TABLE = web.AppKey("route_table", dict[AbstractRoute, Route])


def route_of(request: web.Request) -> Route | None:
    """The table row of the request's route (None: no such route, answered 404/405)."""
    return request.app[ROUTE_TABLE].get(request.match_info.route)

