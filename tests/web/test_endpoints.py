"""Every endpoint, tried with every role and with no credentials.

`EXPECTED` is this test's own table of who may call what (kept apart from the app's
`detectors.web.routes` on purpose: a change to either shows here). A route the app serves
that has no row here fails the test, so a new endpoint cannot go in without deciding who
may call it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from detectors.identity import Passwords, add_user
from detectors.records import open_store
from tests.records.people import CHEAP, PASSWORD
from tests.web.conftest import T0, Client

ALL = frozenset({"viewer", "operator", "quality", "security", "approver", "admin",
                 "integration"})
READERS = ALL - {"admin"}
PUBLIC = "public"
WORKERS = frozenset({"quality", "security"})
#: Nobody by session or token: only a request signed with the connector's inbound secret
#: (tests/tickets/test_inbound.py sends good, forged and replayed ones).
SIGNED = "signed webhook"

#: (method, path) → the roles that may call it, or PUBLIC.
EXPECTED: dict[tuple[str, str], frozenset[str] | str] = {
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("GET", "/static/otwatch.css"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/"): READERS,
    ("GET", "/records/{id}"): READERS,
    ("GET", "/admin/users"): frozenset({"admin"}),
    ("GET", "/api/me"): ALL,
    ("GET", "/api/records"): READERS,
    ("GET", "/api/records/{id}"): READERS,
    ("GET", "/api/records/{id}/trail"): READERS,
    ("GET", "/api/verify"): READERS,
    ("GET", "/api/kpis"): READERS,
    ("GET", "/kpis"): READERS,
    ("GET", "/records/{id}/dossier"): READERS,
    ("GET", "/records/{id}/dossier.pdf"): READERS,
    ("POST", "/api/records/{id}/transition"): frozenset({"quality", "security"}),
    ("POST", "/api/records/{id}/signatures"): frozenset({"approver"}),
    ("POST", "/api/records/{id}/comments"): frozenset({"operator", "quality", "security",
                                                       "approver"}),
    ("POST", "/logout"): ALL,
    # the joint procedure's steps
    ("POST", "/api/reports"): frozenset({"operator", "quality", "security"}),
    ("POST", "/api/records/{id}/leads"): WORKERS,
    ("POST", "/api/records/{id}/sections"): WORKERS,
    ("POST", "/api/records/{id}/impact"): WORKERS,
    ("POST", "/api/records/{id}/impact/contributions"): frozenset({"operator", "quality",
                                                                   "security"}),
    ("GET", "/api/records/{id}/look-back"): READERS,
    ("POST", "/api/records/{id}/notifications"): WORKERS,
    ("POST", "/api/records/{id}/holds"): frozenset({"quality"}),
    ("POST", "/api/records/{id}/holds/release"): frozenset({"quality"}),
    ("POST", "/api/records/{id}/decisions"): WORKERS,
    ("POST", "/api/records/{id}/decisions/status"): WORKERS,
    ("POST", "/api/records/{id}/containment"): WORKERS,
    ("POST", "/api/records/{id}/root-cause"): WORKERS,
    ("POST", "/api/records/{id}/capa"): WORKERS,
    ("POST", "/api/records/{id}/capa/update"): WORKERS,
    ("POST", "/api/records/{id}/capa/due"): WORKERS,
    ("POST", "/api/records/{id}/effectiveness"): WORKERS,
    ("POST", "/api/records/{id}/attachments"): WORKERS,
    ("GET", "/api/records/{id}/attachments/{sha256}"): READERS,
    ("POST", "/api/tickets/{system}/webhook"): SIGNED,
    ("POST", "/api/records/{id}/references"): frozenset({"quality", "security"}),
    # the HTML forms: each with its JSON twin's roles
    ("GET", "/report"): frozenset({"operator", "quality", "security"}),
    ("POST", "/report"): frozenset({"operator", "quality", "security"}),
    ("POST", "/records/{id}/steps/leads"): WORKERS,
    ("POST", "/records/{id}/steps/section"): WORKERS,
    ("POST", "/records/{id}/steps/contribution"): frozenset({"operator", "quality",
                                                             "security"}),
    ("POST", "/records/{id}/steps/impact"): WORKERS,
    ("POST", "/records/{id}/steps/notification"): WORKERS,
    ("POST", "/records/{id}/steps/hold"): frozenset({"quality"}),
    ("POST", "/records/{id}/steps/release"): frozenset({"quality"}),
    ("POST", "/records/{id}/steps/decision"): WORKERS,
    ("POST", "/records/{id}/steps/decision-status"): WORKERS,
    ("POST", "/records/{id}/steps/containment"): WORKERS,
    ("POST", "/records/{id}/steps/root-cause"): WORKERS,
    ("POST", "/records/{id}/steps/capa"): WORKERS,
    ("POST", "/records/{id}/steps/capa-update"): WORKERS,
    ("POST", "/records/{id}/steps/capa-due"): WORKERS,
    ("POST", "/records/{id}/steps/effectiveness"): WORKERS,
    ("POST", "/records/{id}/steps/reference"): WORKERS,
    ("POST", "/records/{id}/steps/attach"): WORKERS,
    ("POST", "/records/{id}/steps/comment"): frozenset({"operator", "quality", "security",
                                                        "approver"}),
    ("POST", "/records/{id}/steps/transition"): WORKERS,
    ("POST", "/records/{id}/steps/sign"): frozenset({"approver"}),
}
BODIES: dict[str, dict[str, Any]] = {
    "/api/records/{id}/transition": {"to": "cancelled", "reason": "endpoint test"},
    "/api/records/{id}/signatures": {"as": "quality", "meaning": "m", "password": PASSWORD},
    "/api/records/{id}/comments": {"text": "endpoint test"},
    "/api/records/{id}/leads": {"lead": "qa.lee", "co_lead": "soc.kim", "reason": "r"},
    "/api/records/{id}/impact/contributions": {"function": "quality", "reason": "r"},
    "/api/records/{id}/holds": {"lot_id": "LOT-7", "reason": "r"},
    **{path: {"reason": "endpoint test"} for method, path in EXPECTED
       if method == "POST" and path.startswith("/api/") and path not in (
           "/api/records/{id}/transition", "/api/records/{id}/signatures",
           "/api/records/{id}/comments", "/api/records/{id}/leads",
           "/api/records/{id}/impact/contributions", "/api/records/{id}/holds",
           "/api/records/{id}/references", "/api/tickets/{system}/webhook")},
    "/api/records/{id}/references": {"kind": "deviation", "system": "QMS", "ref_id": "D-1",
                                     "reason": "endpoint test"},
    "/api/tickets/{system}/webhook": {"record_id": "NC-2026-000001", "state": "Closed",
                                      "remote_actor": "someone"},
}


def served(client: Client) -> set[tuple[str, str]]:
    return {(route.method, route.resource.canonical)
            for route in client.app.router.routes() if route.resource is not None}


def test_every_served_route_has_a_row(client: Client) -> None:
    missing = served(client) - set(EXPECTED)
    assert not missing, f"routes with no row in EXPECTED (decide who may call them): {missing}"
    assert set(EXPECTED) - served(client) == set(), "rows for routes the app no longer serves"


@pytest.fixture
def one_role_each(db_path: Path) -> dict[str, str]:
    """A user per role holding that role only: role → user id."""
    users = {role: f"only.{role}" for role in ALL}
    hashed = Passwords(CHEAP).hash(PASSWORD)
    with open_store(str(db_path)) as store, store.database.write() as conn:
        for role, user_id in users.items():
            add_user(conn, user_id, f"Only {role.title()}", [role], password_hash=hashed,
                     by="test", now=T0)
    return users


async def _session(client: Client, user_id: str | None) -> tuple[aiohttp.ClientSession, str]:
    """A browser of its own (cookie jar), signed in as ``user_id``; and its CSRF token."""
    browser = aiohttp.ClientSession(str(client.make_url("")),
                                    cookie_jar=aiohttp.CookieJar(unsafe=True))
    if user_id is None:
        return browser, ""
    page = await (await browser.get("/login")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    await browser.post("/login", data={"csrf_token": token.group(1), "username": user_id,
                                       "password": PASSWORD}, allow_redirects=False)
    me = await (await browser.get("/api/me")).json()
    return browser, str(me["csrf_token"])


async def _call(browser: aiohttp.ClientSession, csrf: str, method: str, path: str) -> int:
    # An unknown record for the PDF (404 once allowed): rendering one is test_dossier.py's,
    # an integration test (WeasyPrint runs ldconfig to find pango).
    record = "NC-2026-999999" if path.endswith(".pdf") else "NC-2026-000001"
    url = (path.replace("{id}", record).replace("{sha256}", "0" * 64)
           .replace("{system}", "thehive"))
    if method == "GET":
        async with browser.get(url, allow_redirects=False) as resp:
            return resp.status
    if path == "/login":  # its own double-submit token: the form's, not the session's
        page = await (await browser.get("/login")).text()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        csrf = token.group(1)
    if path in BODIES:
        async with browser.post(url, json=BODIES[path], allow_redirects=False,
                                headers={"X-CSRF-Token": csrf}) as resp:
            return resp.status
    async with browser.post(url, data={"csrf_token": csrf}, allow_redirects=False) as resp:
        return resp.status


@pytest.fixture
async def browsers(
    client: Client, one_role_each: dict[str, str],
) -> AsyncIterator[dict[str | None, tuple[aiohttp.ClientSession, str]]]:
    made: dict[str | None, tuple[aiohttp.ClientSession, str]] = {}
    for role in [None, *sorted(ALL)]:
        made[role] = await _session(client, None if role is None else one_role_each[role])
    yield made
    for browser, _ in made.values():
        await browser.close()


async def test_every_endpoint_with_every_role_and_with_none(
    browsers: dict[str | None, tuple[aiohttp.ClientSession, str]],
) -> None:
    wrong: list[str] = []
    rows = sorted(EXPECTED.items(), key=lambda item: item[0] == ("POST", "/logout"))
    for (method, path), allowed in rows:
        for role, (browser, csrf) in browsers.items():
            status = await _call(browser, csrf, method, path)
            if allowed == SIGNED:  # a session or token is no signature: 401 for everyone
                if status != 401:
                    wrong.append(f"{method} {path} as {role}: {status}, expected 401")
            elif allowed == PUBLIC:  # a refused sign-in (401) is the form's answer, not access
                if status == 403 or (method == "GET" and status in (401, 303)):
                    wrong.append(f"{method} {path} as {role}: {status}, expected public")
            elif role is not None and role in allowed:
                if status in (401, 403) or (status == 303 and method == "GET"):
                    wrong.append(f"{method} {path} as {role}: {status}, expected allowed")
            elif role is None:
                expected = 401 if path.startswith("/api/") else 303
                if status != expected:
                    wrong.append(f"{method} {path} anonymous: {status}, expected {expected}")
            elif status != 403:
                wrong.append(f"{method} {path} as {role}: {status}, expected 403")
    assert not wrong, "\n".join(wrong)
