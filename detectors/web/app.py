"""The records API and web UI as one aiohttp application.

JSON API (errors are ``{"error": "..."}`` with a fitting status; a bad request changes nothing)::

    GET  /api/records                   newest first; [] while the database does not exist yet
    GET  /api/records/{id}              the full record with evidence and ticket (404 if unknown)
    GET  /api/records/{id}/trail        the record's audit trail entries
    POST /api/records/{id}/transition   {"to", "actor", "roles", "reason", "signatures"?,
                                         "expected_version"?}  (stale version: 409)
    GET  /api/verify                    audit-trail hash-chain verification
    GET  /api/kpis                      KPIs from the audit trail
    GET  /healthz

HTML: ``/`` (records list, refreshes every 5 s) and ``/records/{id}``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from detectors.records import (
    HEAD_REVISION,
    ConcurrentUpdate,
    InvalidUpdate,
    MasterRecord,
    PermissionDenied,
    ReasonRequired,
    RecordNotFound,
    RecordStore,
    Signature,
    State,
    StoreUnavailable,
    TrailEntry,
    TransitionRefused,
    VerifyResult,
)
from detectors.web import _render
from detectors.web._gate import RecordsGate, StoreNotReady

log = logging.getLogger(__name__)

GATE = web.AppKey("gate", RecordsGate)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SUMMARY_FIELDS = (
    "id", "classification", "state", "severity", "security_ticket", "controller", "tag",
    "site", "line", "description", "detected_at", "last_event_at",
)


class BadRequest(Exception):
    """The request body is malformed; the message names the field and the fix."""


class TransitionBody(BaseModel):
    """The body of ``POST /api/records/{id}/transition``; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    to: State
    actor: str = Field(min_length=1)
    roles: list[str]
    reason: str = Field(min_length=1)
    signatures: list[Signature] = Field(default_factory=list)
    expected_version: int | None = Field(default=None, ge=1)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json"
    )


def _dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json")


def summary(record: MasterRecord) -> dict[str, Any]:
    data: dict[str, Any] = record.model_dump(mode="json", include=set(SUMMARY_FIELDS))
    data["evidence_count"] = len(record.evidence)
    return data


def newest_first(records: list[MasterRecord]) -> list[MasterRecord]:
    return sorted(records, key=lambda r: (r.detected_at, r.id), reverse=True)


def _status_of(exc: Exception) -> int:
    if isinstance(exc, RecordNotFound):
        return 404
    if isinstance(exc, TransitionRefused | ConcurrentUpdate):
        return 409
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, BadRequest | InvalidUpdate | ReasonRequired):
        return 400
    if isinstance(exc, StoreNotReady | StoreUnavailable):
        return 503
    return 500


def _error_body(exc: Exception) -> dict[str, Any]:
    body: dict[str, Any] = {"error": str(exc)}
    if isinstance(exc, TransitionRefused):
        body.update(current=exc.current, requested=exc.requested, missing=exc.missing)
    if isinstance(exc, ConcurrentUpdate):
        body.update(expected_version=exc.expected, current_version=exc.current)
    return body


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One boundary that turns every failure into a clear JSON (API) or HTML (UI) error."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if not _wants_json(request) or exc.status < 400:
            raise
        return json_response({"error": f"{exc.reason}: {request.method} {request.path}"},
                             exc.status)
    except Exception as exc:
        status = _status_of(exc)
        if status == 500:
            log.exception("%s %s failed", request.method, request.path)
        if _wants_json(request):
            return json_response(_error_body(exc), status)
        return web.Response(text=_render.error_page(status, str(exc)), status=status,
                            content_type="text/html")


async def _store(request: web.Request, call: Callable[[RecordStore], Any]) -> Any:
    return await request.app[GATE].run(call)


async def api_records(request: web.Request) -> web.Response:
    try:
        records: list[MasterRecord] = await _store(request, lambda s: s.list_records())
    except StoreNotReady as exc:
        response = json_response([])
        response.headers["X-Otwatch-Note"] = str(exc)
        return response
    return json_response([summary(r) for r in newest_first(records)])


async def api_record(request: web.Request) -> web.Response:
    record_id = request.match_info["id"]
    record: MasterRecord = await _store(request, lambda s: s.get_record(record_id))
    return json_response(_dump(record))


def _record_trail(store: RecordStore, record_id: str) -> list[TrailEntry]:
    store.get_record(record_id)  # RecordNotFound for an unknown id
    return store.trail(record_id)


async def api_trail(request: web.Request) -> web.Response:
    record_id = request.match_info["id"]
    trail: list[TrailEntry] = await _store(request, lambda s: _record_trail(s, record_id))
    return json_response([_dump(t) for t in trail])


async def parse_transition(request: web.Request) -> TransitionBody:
    """The transition body, or `BadRequest` naming the bad field."""
    raw = await request.read()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON ({exc}); send a JSON object") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object with to, actor, roles, reason")
    try:
        return TransitionBody.model_validate(data)
    except ValidationError as exc:
        raise BadRequest("; ".join(_field_error(err) for err in exc.errors())) from None


def _field_error(err: Any) -> str:
    name = ".".join(str(part) for part in err["loc"]) or "body"
    return f"field {name!r}: {err['msg']}"


async def api_transition(request: web.Request) -> web.Response:
    record_id = request.match_info["id"]
    body = await parse_transition(request)
    now = datetime.now(UTC)

    def call(store: RecordStore) -> MasterRecord:
        return store.transition(
            record_id, body.to, actor=body.actor, roles=body.roles, reason=body.reason,
            now=now, signatures=body.signatures, expected_version=body.expected_version,
        )

    record: MasterRecord = await _store(request, call)
    log.info("%s: %s moved it to %s", record_id, body.actor, body.to.value)
    return json_response(_dump(record))


async def api_verify(request: web.Request) -> web.Response:
    result: VerifyResult = await _store(request, lambda s: s.verify_trail())
    return json_response(_dump(result))


async def api_kpis(request: web.Request) -> web.Response:
    now = datetime.now(UTC)
    return json_response(_dump(await _store(request, lambda s: s.kpis(now))))


async def healthz(request: web.Request) -> web.Response:
    try:
        version: int = await _store(request, lambda s: s.schema_version())
    except StoreNotReady as exc:
        return json_response({"ok": True, "store": "not ready", "note": str(exc)})
    if version < HEAD_REVISION:
        note = (f"the records database is at schema version {version} of {HEAD_REVISION}; "
                "the classifier migrates it")
        return json_response({"ok": True, "store": "not ready", "note": note})
    return json_response({"ok": True, "store": "ready"})


def _list_view(store: RecordStore) -> tuple[list[MasterRecord], VerifyResult]:
    return store.list_records(), store.verify_trail()


async def html_list(request: web.Request) -> web.Response:
    note, verify, records = "", None, []
    try:
        records, verify = await _store(request, _list_view)
    except StoreNotReady as exc:
        note = f"No records yet: {exc}. This page refreshes every 5 seconds."
    text = _render.list_page(newest_first(records), note, verify)
    return web.Response(text=text, content_type="text/html")


def _record_view(store: RecordStore, record_id: str) -> tuple[MasterRecord, list[TrailEntry]]:
    return store.get_record(record_id), store.trail(record_id)


async def html_record(request: web.Request) -> web.Response:
    record_id = request.match_info["id"]
    record, trail = await _store(request, lambda s: _record_view(s, record_id))
    return web.Response(text=_render.record_page(record, trail), content_type="text/html")


def create_app(target: str, *, schema: str | None = None) -> web.Application:
    """The application over the records database ``target`` (SQLite path or PostgreSQL DSN)."""
    app = web.Application(middlewares=[errors], client_max_size=64 * 1024)
    gate = RecordsGate(target, schema=schema)
    app[GATE] = gate

    async def close_gate(_: web.Application) -> None:
        await gate.close()

    app.on_cleanup.append(close_gate)
    app.router.add_get("/", html_list)
    app.router.add_get("/records/{id}", html_record)
    app.router.add_get("/api/records", api_records)
    app.router.add_get("/api/records/{id}", api_record)
    app.router.add_get("/api/records/{id}/trail", api_trail)
    app.router.add_post("/api/records/{id}/transition", api_transition)
    app.router.add_get("/api/verify", api_verify)
    app.router.add_get("/api/kpis", api_kpis)
    app.router.add_get("/healthz", healthz)
    return app
