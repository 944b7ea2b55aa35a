"""The records API and web UI for quality and security (aiohttp, server-rendered HTML).

    python -m detectors.web --db .demo/records.db --port 8080

Public surface::

    from detectors.web import create_app
    app = create_app("records.db")     # or a PostgreSQL DSN, optional schema=

Errors inside the service: `StoreNotReady` (the database does not exist yet; the list is empty)
and `BadRequest` (a malformed body; answered 400, nothing changed). Records-store errors map to
404 (unknown record), 409 (transition refused), 400 (invalid update, missing reason) and 503
(database unavailable).
"""

from detectors.web._gate import RecordsGate, StoreNotReady
from detectors.web.app import BadRequest, TransitionBody, create_app

__all__ = ["BadRequest", "RecordsGate", "StoreNotReady", "TransitionBody", "create_app"]
