"""The records API and web UI for quality and security (aiohttp, server-rendered HTML).

    python -m detectors.web --config config/records-ui.yaml --db .demo/records.db

Public surface::

    from detectors.web import create_app, ROUTES
    app = create_app("records.db", settings=IdentitySettings())   # or a PostgreSQL DSN

`ROUTES` (`detectors.web.routes`) is every endpoint with who may call it; the security
policy (`detectors.web._security`) decides who a request is from once (API token or session
cookie, never the body), checks the route's permission, CSRF and body type, and adds the
security headers to every response. Errors: 401 (sign in), 403 (not allowed, no CSRF token),
415 (body type), 400 (bad body, `BadRequest`), 404, 409, 503 (`StoreNotReady`).
"""

from detectors.web._access import PUBLIC, SIGNED_IN, Route
from detectors.web._api import BadRequest, TransitionBody
from detectors.web._gate import RecordsGate, StoreNotReady
from detectors.web.app import create_app
from detectors.web.config import RecordsServiceConfig, load_service_config
from detectors.web.routes import ROUTES

__all__ = [
    "PUBLIC",
    "ROUTES",
    "SIGNED_IN",
    "BadRequest",
    "RecordsGate",
    "RecordsServiceConfig",
    "Route",
    "StoreNotReady",
    "TransitionBody",
    "create_app",
    "load_service_config",
]
