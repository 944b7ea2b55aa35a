"""The HTML forms of the joint procedure's steps: one ``POST /records/{id}/steps/<name>``
per step, each the twin of a JSON endpoint with the same permission
(`_form_steps.FORM_STEPS`; a test holds them to it).

A form posts ``application/x-www-form-urlencoded`` with the session's CSRF token (checked by
the security policy), ``reason`` and ``expected_version``. Its fields are turned into the
JSON body the API takes (`unflatten`) and validated by the SAME body model, then made into
the SAME typed command (`_steps_api`, `_api`): no business rule lives here. On success the
browser is sent back to the step on the record page (303); a refusal (guard, bad input,
stale version, wrong password) re-renders the record page with the message beside the
step and the user's input kept.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp.web_request import FileField

from detectors.identity import SignInRefused
from detectors.records import (
    ConcurrentUpdate,
    GuardRefused,
    InvalidUpdate,
    PermissionDenied,
    ReasonRequired,
    SignatureRefused,
    TransitionRefused,
    UnknownActor,
)
from detectors.web import _api, _pages, _record_page
from detectors.web import _steps_api as steps
from detectors.web._access import Handler
from detectors.web._form_steps import FormStep, unflatten
from detectors.web._pages import Refusal

#: Refusals shown beside the step that met them, with the status of the re-rendered page.
BESIDE_THE_STEP: tuple[tuple[tuple[type[Exception], ...], int], ...] = (
    ((GuardRefused, TransitionRefused, ConcurrentUpdate), 409),
    ((PermissionDenied, UnknownActor, SignInRefused), 403),
    ((_api.BadRequest, InvalidUpdate, ReasonRequired, SignatureRefused), 400),
)
_CAUGHT = tuple(kind for kinds, _ in BESIDE_THE_STEP for kind in kinds)


def _status_of(exc: Exception) -> int:
    return next(status for kinds, status in BESIDE_THE_STEP if isinstance(exc, kinds))


def form_fields(posted: Mapping[str, Any]) -> dict[str, str]:
    """The text fields of a posted form, without the CSRF token (the policy checked it); an
    uploaded ``file`` becomes the attachment body's filename, media type and base64."""
    fields = {key: value for key, value in posted.items()
              if key != "csrf_token" and isinstance(value, str)}
    upload = posted.get("file")
    if isinstance(upload, FileField):
        fields.update(filename=upload.filename, media_type=upload.content_type,
                      content_base64=base64.b64encode(upload.file.read()).decode())
    return fields


def _kept(fields: dict[str, str]) -> dict[str, str]:
    """What a refused form shows again: never a password, nor a file's bytes."""
    return {key: value for key, value in fields.items()
            if key not in ("password", "signature.password", "content_base64")}


def step_handler(step: FormStep) -> Handler:
    """``POST /records/{id}/steps/<name>``: run the step, or show why not beside it."""

    async def handler(request: web.Request) -> web.StreamResponse:
        record_id = request.match_info["id"]
        fields = form_fields(await request.post())
        try:
            body = _api.validated(step.model, step.prepare(unflatten(fields)))
            await _api.execute(request, await step.build(request, body))
        except _CAUGHT as exc:
            refusal = Refusal(step.name, str(exc), _kept(fields))
            return await _record_page.record_response(request, record_id, refusal=refusal,
                                                status=_status_of(exc))
        raise web.HTTPSeeOther(f"/records/{record_id}#step-{step.name}")

    return handler


async def report_form(request: web.Request) -> web.Response:
    """``GET /report``: a suspected nonconformity, reported by hand."""
    return _pages.report_page(request)


async def report_submit(request: web.Request) -> web.StreamResponse:
    """``POST /report``: the same body and command as ``POST /api/reports``."""
    fields = form_fields(await request.post())
    try:
        body = _api.validated(steps.ReportBody, unflatten(fields))
        record = await steps.file_report(request, body)
    except _CAUGHT as exc:
        return _pages.report_page(request, refusal=Refusal("report", str(exc), fields),
                                  status=_status_of(exc))
    raise web.HTTPSeeOther(f"/records/{record.id}")
