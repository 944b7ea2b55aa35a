"""The JSON API. Every state-changing call acts as the signed-in user (`IDENTITY`); a body
that names an actor or roles is refused, and unknown fields are refused too."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from detectors.identity import SESSION, Identity
from detectors.records import (
    HEAD_REVISION,
    AddComment,
    AddExternalReference,
    Command,
    MasterRecord,
    RecordStore,
    Role,
    Sign,
    SignatureRequest,
    State,
    TrailEntry,
    Transition,
)
from detectors.web._access import AccessDenied
from detectors.web._gate import StoreNotReady
from detectors.web._keys import IDENTITY, PARTS
from detectors.web._pages import newest_first
from detectors.web._signin import reauthenticate

M = TypeVar("M", bound=BaseModel)
SUMMARY_FIELDS = (
    "id", "classification", "state", "severity", "security_ticket", "controller", "tag",
    "site", "line", "description", "detected_at", "last_event_at",
)
#: Body fields that would name who acts: refused, the actor is the authenticated user.
WHO_FIELDS = ("actor", "roles", "role", "user", "user_id", "signed_by", "printed_name")


class BadRequest(Exception):
    """The request body is malformed; the message names the field and the fix."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SignatureBody(_Body):
    """A signature given by the signed-in user: the role signed as, its meaning, and the
    password entered again (21 CFR 11.200)."""

    signed_as: Role = Field(alias="as")
    meaning: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1)


class TransitionBody(_Body):
    """``POST /api/records/{id}/transition``."""

    to: State
    reason: str = Field(min_length=1)
    signature: SignatureBody | None = None
    expected_version: int | None = Field(default=None, ge=1)


class SignBody(SignatureBody):
    """``POST /api/records/{id}/signatures``: sign the step out of the current state."""

    reason: str | None = None
    expected_version: int | None = Field(default=None, ge=1)


class CommentBody(_Body):
    """``POST /api/records/{id}/comments``."""

    text: str = Field(min_length=1, max_length=4000)
    expected_version: int | None = Field(default=None, ge=1)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json")


def summary(record: MasterRecord) -> dict[str, Any]:
    data: dict[str, Any] = record.model_dump(mode="json", include=set(SUMMARY_FIELDS))
    data["evidence_count"] = len(record.evidence)
    return data


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The body as ``model``, or `BadRequest` naming the bad field."""
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON ({exc}); send a JSON object") from None
    if not isinstance(data, dict):
        raise BadRequest(f"the body must be a JSON object with {', '.join(model.model_fields)}")
    named = [key for key in WHO_FIELDS if key in data]
    if named:
        raise BadRequest(
            f"field(s) {', '.join(repr(k) for k in named)} refused: the actor is the signed-in "
            "user (session or API token) with the roles otwatch holds for them, never what a "
            "request body says; remove them")
    return validated(model, data)


def validated(model: type[M], data: dict[str, Any]) -> M:
    """``data`` as ``model``, or `BadRequest` naming every bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest("; ".join(_field_error(err) for err in exc.errors())) from None


def _field_error(err: Any) -> str:
    name = ".".join(str(part) for part in err["loc"]) or "body"
    return f"field {name!r}: {err['msg']}"


def _identity(request: web.Request) -> Identity:
    identity = request[IDENTITY]
    assert identity is not None  # the security policy lets no anonymous request this far
    return identity


async def execute(request: web.Request, command: Command) -> MasterRecord:
    """Run ``command`` as the signed-in user; the record as it now is."""
    parts, actor = request.app[PARTS], _identity(request).user.actor()
    now = parts.clock()
    record: MasterRecord = await parts.gate.run(
        lambda store: store.execute(command, actor=actor, now=now))
    return record


async def _run(request: web.Request, command: Command) -> web.Response:
    return json_response(_dump(await execute(request, command)))


async def _signature(request: web.Request, body: SignatureBody) -> SignatureRequest:
    identity = _identity(request)
    if identity.via != SESSION:
        raise AccessDenied("a signature is given by a person signed in with their password "
                           "(a browser session or otwatch-records sign), not by an API token")
    proof = await reauthenticate(request, identity.user.user_id, body.password)
    return SignatureRequest(body.signed_as, body.meaning, proof)


async def transition_command(request: web.Request, body: TransitionBody) -> Command:
    signature = None if body.signature is None else await _signature(request, body.signature)
    return Transition(record_id=request.match_info["id"], reason=body.reason, to=body.to,
                      signature=signature, expected_version=body.expected_version)


async def sign_command(request: web.Request, body: SignBody) -> Command:
    signature = await _signature(request, body)
    return Sign(record_id=request.match_info["id"], reason=body.reason or body.meaning,
                signature=signature, expected_version=body.expected_version)


async def comment_command(request: web.Request, body: CommentBody) -> Command:
    return AddComment(record_id=request.match_info["id"], reason=body.text,
                      expected_version=body.expected_version)


async def transition(request: web.Request) -> web.Response:
    body = await parse_body(request, TransitionBody)
    return await _run(request, await transition_command(request, body))


async def sign(request: web.Request) -> web.Response:
    body = await parse_body(request, SignBody)
    return await _run(request, await sign_command(request, body))


async def comment(request: web.Request) -> web.Response:
    body = await parse_body(request, CommentBody)
    return await _run(request, await comment_command(request, body))


async def me(request: web.Request) -> web.Response:
    identity = _identity(request)
    user = identity.user
    return json_response({"user_id": user.user_id, "printed_name": user.printed_name,
                          "roles": sorted(user.roles), "via": identity.via,
                          "csrf_token": identity.csrf_token or None})


async def records(request: web.Request) -> web.Response:
    try:
        found: list[MasterRecord] = await request.app[PARTS].gate.run(
            lambda s: s.list_records())
    except StoreNotReady as exc:
        response = json_response([])
        response.headers["X-Otwatch-Note"] = str(exc)
        return response
    return json_response([summary(r) for r in newest_first(found)])


def _record_with_links(store: RecordStore, record_id: str) -> dict[str, Any]:
    """The record, its tickets in external tools (with delivery status) and its references."""
    data: dict[str, Any] = _dump(store.get_record(record_id))
    data["linked_tickets"] = [{k: v for k, v in row.items() if k != "record_id"}
                              for row in store.linked_tickets(record_id)]
    data["external_refs"] = store.external_references(record_id)
    return data


async def record(request: web.Request) -> web.Response:
    record_id = request.match_info["id"]
    return json_response(await request.app[PARTS].gate.run(
        lambda s: _record_with_links(s, record_id)))


class ReferenceBody(_Body):
    """``POST /api/records/{id}/references``: a deviation report, risk assessment, change
    control or QMS record this record refers to."""

    kind: Literal["deviation", "risk_assessment", "change_control", "qms_record"]
    system: str = Field(min_length=1, max_length=120)
    ref_id: str = Field(min_length=1, max_length=200)
    url: str = Field(default="", max_length=2000)
    reason: str = Field(min_length=1, max_length=2000)
    expected_version: int | None = Field(default=None, ge=1)


async def reference_command(request: web.Request, body: ReferenceBody) -> Command:
    return AddExternalReference(
        record_id=request.match_info["id"], kind=body.kind, system=body.system,
        ref_id=body.ref_id, url=body.url, reason=body.reason,
        expected_version=body.expected_version)


async def add_reference(request: web.Request) -> web.Response:
    body = await parse_body(request, ReferenceBody)
    return await _run(request, await reference_command(request, body))


def _record_trail(store: RecordStore, record_id: str) -> list[TrailEntry]:
    store.get_record(record_id)  # RecordNotFound for an unknown id
    return store.trail(record_id)


async def trail(request: web.Request) -> web.Response:
    record_id = request.match_info["id"]
    entries: list[TrailEntry] = await request.app[PARTS].gate.run(
        lambda s: _record_trail(s, record_id))
    return json_response([_dump(t) for t in entries])


async def verify(request: web.Request) -> web.Response:
    """The whole-store tamper check (`_verify`), always run afresh."""
    parts = request.app[PARTS]
    return json_response((await parts.checked.run_now(parts.gate, parts.clock)).as_json())


async def kpis(request: web.Request) -> web.Response:
    now = request.app[PARTS].clock()
    return json_response(_dump(await request.app[PARTS].gate.run(lambda s: s.kpis(now))))


async def healthz(request: web.Request) -> web.Response:
    try:
        version: int = await request.app[PARTS].gate.run(lambda s: s.schema_version())
    except StoreNotReady as exc:
        return json_response({"ok": True, "store": "not ready", "note": str(exc)})
    if version < HEAD_REVISION:
        note = (f"the records database is at schema version {version} of {HEAD_REVISION}; "
                "the classifier migrates it")
        return json_response({"ok": True, "store": "not ready", "note": note})
    return json_response({"ok": True, "store": "ready"})
