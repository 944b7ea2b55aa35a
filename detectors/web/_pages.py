"""The HTML pages: records list, one record, the admin's users page, the stylesheet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from detectors.identity import SecurityEvent, User, list_users, read_events
from detectors.records import MasterRecord, RecordStore, TrailEntry
from detectors.web import _render
from detectors.web._gate import StoreNotReady
from detectors.web._keys import IDENTITY, PARTS, ServiceParts
from detectors.web._verify import Verified, verify_whole_store

STYLESHEET = (Path(__file__).parent / "static" / "otwatch.css").read_bytes()


def viewer_of(request: web.Request) -> _render.Viewer | None:
    identity = request.get(IDENTITY)
    if identity is None:
        return None
    user = identity.user
    return _render.Viewer(user.user_id, user.printed_name, tuple(sorted(user.roles)),
                          identity.csrf_token)


def newest_first(records: list[MasterRecord]) -> list[MasterRecord]:
    return sorted(records, key=lambda r: (r.detected_at, r.id), reverse=True)


async def _checked(parts: ServiceParts) -> Verified:
    """The whole-store check, rerun once the newest is older than `_verify.PAGE_TTL`."""
    now = parts.clock()
    found = parts.checked.fresh(now)
    if found is None:
        found = parts.checked.keep(await parts.gate.run(verify_whole_store), now)
    return found


async def records_list(request: web.Request) -> web.Response:
    note, verify, records = "", None, list[MasterRecord]()
    parts = request.app[PARTS]
    try:
        records = await parts.gate.run(lambda s: s.list_records())
        verify = await _checked(parts)
    except StoreNotReady as exc:
        note = f"No records yet: {exc}. This page refreshes every 5 seconds."
    text = _render.list_page(newest_first(records), note, verify, viewer_of(request))
    return web.Response(text=text, content_type="text/html")


def _record_view(store: RecordStore, record_id: str) -> tuple[MasterRecord, list[TrailEntry]]:
    return store.get_record(record_id), store.trail(record_id)


async def record(request: web.Request) -> web.Response:
    record_id = request.match_info["id"]
    found, trail = await request.app[PARTS].gate.run(lambda s: _record_view(s, record_id))
    text = _render.record_page(found, trail, viewer_of(request))
    return web.Response(text=text, content_type="text/html")


def _people(conn: Any) -> tuple[list[User], list[SecurityEvent]]:
    return list_users(conn), read_events(conn, limit=50)


async def users(request: web.Request) -> web.Response:
    people, events = await request.app[PARTS].gate.read(_people)
    viewer = viewer_of(request)
    assert viewer is not None  # the route needs a signed-in admin
    return web.Response(text=_render.users_page(people, events, viewer),
                        content_type="text/html")


async def stylesheet(request: web.Request) -> web.Response:
    return web.Response(body=STYLESHEET, content_type="text/css",
                        headers={"Cache-Control": "max-age=3600"})
