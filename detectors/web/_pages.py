"""The HTML pages but the record page (`_record_page`): the worklist, the hand-made report,
the admin's users page, the error and sign-in pages, and the stylesheet. Every page is a
Jinja2 template (`templating`); no page has a script (the CSP allows none)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from detectors.classification import Severity
from detectors.identity import SecurityEvent, User, list_users, read_events
from detectors.records import MasterRecord
from detectors.records.permissions import Permission, allows
from detectors.records.worklist import (
    PAGE_SIZES,
    SORTS,
    STATE_CHOICES,
    WorklistError,
    WorklistFilter,
    WorklistPage,
    query_worklist,
)
from detectors.web._gate import StoreNotReady
from detectors.web._keys import IDENTITY, PARTS
from detectors.web._verify import NOT_CHECKED
from detectors.web.templating import render

STYLESHEET = (Path(__file__).parent / "static" / "otwatch.css").read_bytes()
#: The worklist refreshes itself this often (``auto=1``: not the user's activity, so the idle
#: timeout still runs); long enough not to interrupt someone choosing filters.
REFRESH_S = 60


@dataclass(frozen=True)
class Viewer:
    """Who the page is for: shown in its corner, with a sign-out form carrying the CSRF
    token of their session."""

    user_id: str
    printed_name: str
    roles: tuple[str, ...]
    csrf_token: str

    @property
    def may_report(self) -> bool:
        """Whether the nav offers the hand-made report (a viewer would only be refused)."""
        return allows(self.roles, Permission.REPORT)


@dataclass(frozen=True)
class Refusal:
    """Why a form was refused, for the step it came from, with what the user had typed."""

    step: str
    message: str
    fields: dict[str, str] = field(default_factory=dict)


def viewer_of(request: web.Request) -> Viewer | None:
    identity = request.get(IDENTITY)
    if identity is None:
        return None
    user = identity.user
    return Viewer(user.user_id, user.printed_name, tuple(sorted(user.roles)),
                  identity.csrf_token)


def html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html")


def newest_first(records: list[MasterRecord]) -> list[MasterRecord]:
    return sorted(records, key=lambda r: (r.detected_at, r.id), reverse=True)


def worklist_filter(query: Any) -> WorklistFilter:
    """The worklist's GET parameters as a filter (`WorklistError` names a bad one)."""
    numbers = {}
    for name, default in (("page", 1), ("per_page", PAGE_SIZES[0])):
        text = str(query.get(name, "") or default)
        if not text.isdigit():
            raise WorklistError(f"{name} {text!r}: a whole number")
        numbers[name] = int(text)
    return WorklistFilter(
        state=query.get("state", "") or "open", classification=query.get("classification", ""),
        severity=query.get("severity", ""), owner=query.get("owner", "").strip(),
        overdue=query.get("overdue", "") in ("1", "on", "true"), q=query.get("q", ""),
        sort=query.get("sort", "") or "newest", **numbers)


def query_string(wanted: WorklistFilter, **changes: Any) -> str:
    """The worklist's address for ``wanted`` with ``changes`` (defaults left out)."""
    values = {**wanted.__dict__, **changes}
    defaults = WorklistFilter().__dict__
    kept = {k: ("1" if v is True else v) for k, v in values.items() if v != defaults[k]}
    return "/?" + urlencode(kept) if kept else "/"


def age(detected_at: str, now: datetime) -> str:
    """How long ago, in days and hours (``3 d 4 h``), or minutes within the first hour."""
    seconds = max(0, int((now - datetime.fromisoformat(detected_at)).total_seconds()))
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _worklist(store: Any, wanted: WorklistFilter, now: datetime) -> WorklistPage:
    with store.database.read() as conn:
        return query_worklist(conn, wanted, today=now.date())


async def records_list(request: web.Request) -> web.Response:
    """``GET /``: the worklist (filters are GET parameters: a filtered list is a bookmark)."""
    parts, now = request.app[PARTS], request.app[PARTS].clock()
    note, verify, found, status = "", None, None, 200
    try:
        wanted = worklist_filter(request.query)
    except WorklistError as exc:
        wanted, note, status = WorklistFilter(), f"Filter refused: {exc}.", 400
    try:
        found = await parts.gate.run(lambda store: _worklist(store, wanted, now))
        verify = await parts.checked.for_page(parts.gate, parts.clock)
    except StoreNotReady as exc:
        note = f"No records yet: {exc}. This page refreshes every {REFRESH_S} seconds."
    refresh_to = query_string(wanted, page=wanted.page)
    refresh = f"{REFRESH_S};url={refresh_to}{'&' if '?' in refresh_to else '?'}auto=1"
    return html(render(
        "worklist.html", viewer=viewer_of(request), refresh=refresh, found=found,
        wanted=wanted, note=note, status=status, verify=verify, not_checked=NOT_CHECKED,
        now=now, age=age, link=query_string, sorts=SORTS, page_sizes=PAGE_SIZES,
        states=STATE_CHOICES, severities=[s.value for s in Severity],
        classifications=("joint", "quality_only", "security_only")), status)


def report_page(request: web.Request, *, refusal: Refusal | None = None,
                status: int = 200) -> web.Response:
    """The hand-made report's form (``refusal``: why the last try was refused)."""
    return html(render("report.html", viewer=viewer_of(request), refusal=refusal,
                       kept=refusal.fields if refusal else {},
                       severities=[s.value for s in Severity]), status)


def _people(conn: Any) -> tuple[list[User], list[SecurityEvent]]:
    return list_users(conn), read_events(conn, limit=50)


async def users(request: web.Request) -> web.Response:
    people, events = await request.app[PARTS].gate.read(_people)
    return html(render("users.html", viewer=viewer_of(request), users=people, events=events))


def error_page(status: int, message: str, viewer: Viewer | None = None) -> str:
    return render("error.html", status=status, message=message, viewer=viewer)


def sign_in_page(*, csrf_token: str, next_path: str, message: str = "", note: str = "",
                 username: str = "") -> str:
    """The sign-in form (a plain form post; the password never goes into a URL)."""
    return render("login.html", csrf_token=csrf_token, next_path=next_path, message=message,
                  note=note, username=username)


async def stylesheet(request: web.Request) -> web.Response:
    return web.Response(body=STYLESHEET, content_type="text/css",
                        headers={"Cache-Control": "max-age=3600"})
