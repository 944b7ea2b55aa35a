"""Nobody acts on a record without being who they say: anonymous and cross-site requests,
CSRF, sign-in and lockout, idle timeout, sign-out, tokens, the security headers."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from detectors.identity import read_events, revoke_token, set_disabled
from detectors.records import open_store
from tests.web.conftest import T0, Client, Clock, bearer, sign_in, sign_in_attempt

NC1 = "NC-2026-000001"
FORGED = b'{"to": "cancelled", "actor": "soc.kim", "roles": ["security"], "reason": "x"}'


def events(db_path: Path, username: str | None = None) -> list[tuple[str, str, str, str]]:
    with open_store(str(db_path)) as store, store.database.read() as conn:
        return [(e.event, e.username, e.source, e.detail)
                for e in reversed(read_events(conn, username=username))]


def state_of(db_path: Path) -> str:
    with open_store(str(db_path)) as store:
        return store.get_record(NC1).state.value


async def test_anonymous_requests_are_refused_and_change_nothing(
    client: Client, db_path: Path,
) -> None:
    """The issue's case: an anonymous transition claiming the security role."""
    resp = await client.post(f"/api/records/{NC1}/transition", data=FORGED,
                             headers={"Content-Type": "application/json"})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert "sign in first" in (await resp.json())["error"]
    for path in ("/api/records", f"/api/records/{NC1}", "/api/verify", "/api/me"):
        assert (await client.get(path)).status == 401
    page = await client.get(f"/records/{NC1}", allow_redirects=False)
    assert page.status == 303
    assert page.headers["Location"].replace("%2F", "/") == f"/login?next=/records/{NC1}"
    assert state_of(db_path) == "detected"


async def test_a_body_naming_the_actor_is_refused_even_when_signed_in(
    client: Client, tokens: dict[str, str], db_path: Path,
) -> None:
    resp = await client.post(f"/api/records/{NC1}/transition", data=FORGED,
                             headers={"Content-Type": "application/json",
                                      **bearer(tokens["qa.lee"])})
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert "'actor', 'roles' refused" in error and "signed-in user" in error
    assert state_of(db_path) == "detected"


async def test_a_cross_site_post_without_the_csrf_token_is_refused(
    client: Client, db_path: Path,
) -> None:
    """A form on another site posting text/plain with the victim's cookie: SameSite=Strict
    keeps the cookie home in a browser; were it sent, the missing token refuses it."""
    csrf = await sign_in(client, "qa.lee")
    url = f"/api/records/{NC1}/transition"
    plain = await client.post(url, data=b'{"to": "cancelled", "reason": "x"}',
                              headers={"Content-Type": "text/plain"})
    assert plain.status == 403 and "CSRF token missing" in (await plain.json())["error"]
    no_token = await client.post(url, json={"to": "cancelled", "reason": "x"})
    assert no_token.status == 403
    wrong = await client.post(url, json={"to": "cancelled", "reason": "x"},
                              headers={"X-CSRF-Token": "guessed"})
    assert wrong.status == 403
    with_token_but_plain = await client.post(url, data=b'{"to": "cancelled", "reason": "x"}',
                                             headers={"Content-Type": "text/plain",
                                                      "X-CSRF-Token": csrf})
    assert with_token_but_plain.status == 415
    assert "takes application/json" in (await with_token_but_plain.json())["error"]
    assert state_of(db_path) == "detected"
    ok = await client.post(url, json={"to": "triage", "reason": "seen"},
                           headers={"X-CSRF-Token": csrf})
    assert ok.status == 200 and state_of(db_path) == "triage"


async def test_token_requests_need_no_csrf_token_but_still_json(
    client: Client, tokens: dict[str, str],
) -> None:
    auth = bearer(tokens["qa.lee"])
    plain = await client.post(f"/api/records/{NC1}/transition",
                              data=b'{"to": "triage", "reason": "x"}',
                              headers={"Content-Type": "text/plain", **auth})
    assert plain.status == 415
    resp = await client.post(f"/api/records/{NC1}/transition",
                             json={"to": "triage", "reason": "x"}, headers=auth)
    assert resp.status == 200


async def test_the_session_cookie_is_httponly_and_samesite_strict(client: Client) -> None:
    resp = await sign_in_attempt(client, "qa.lee", "correct horse battery")
    cookie = resp.cookies["otwatch_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and not cookie["secure"]
    assert cookie["path"] == "/"


async def test_sign_in_form_posted_from_elsewhere_is_refused(client: Client) -> None:
    resp = await client.post("/login", data={"username": "qa.lee",
                                             "password": "correct horse battery"},
                             allow_redirects=False)
    assert resp.status == 403 and "another site" in await resp.text()
    plain = await client.post("/login", data=b"username=qa.lee",
                              headers={"Content-Type": "text/plain"})
    assert plain.status == 415


async def test_sign_in_failures_lock_the_name_and_every_attempt_is_logged(
    client: Client, clock: Clock, db_path: Path,
) -> None:
    for _ in range(2):
        resp = await sign_in_attempt(client, "qa.lee", "wrong")
        assert resp.status == 401
        assert "unknown user name or wrong password" in await resp.text()
    unknown = await sign_in_attempt(client, "nobody", "wrong")
    assert "unknown user name or wrong password" in await unknown.text()
    third = await sign_in_attempt(client, "qa.lee", "wrong")
    assert "locked until 2026-03-02 09:10:00 UTC" in await third.text()
    right = await sign_in_attempt(client, "qa.lee", "correct horse battery")
    assert right.status == 401 and "locked" in await right.text()
    clock.advance(minutes=11)
    assert (await sign_in_attempt(client, "qa.lee", "correct horse battery")).status == 303
    logged = events(db_path, "qa.lee")
    assert [e[0] for e in logged] == ["user_added", "sign_in_refused", "sign_in_refused",
                                      "sign_in_refused", "locked", "sign_in_refused", "sign_in"]
    assert {e[2] for e in logged[1:]} == {"127.0.0.1"}
    assert logged[1][3] == "wrong password" and logged[5][3].startswith("name locked until")
    assert events(db_path, "nobody")[0][3] == "unknown user name"


async def test_a_newline_in_a_user_name_does_not_forge_a_log_line(
    client: Client, db_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    forged = "eve\n2026-03-02 08:00:00 INFO detectors.identity sign_in: user admin.ada"
    with caplog.at_level(logging.INFO, logger="detectors.identity"):
        await sign_in_attempt(client, forged, "x")
    (line,) = [r.getMessage() for r in caplog.records if "eve" in r.getMessage()]
    assert "\n" not in line and "eve\\x0a2026-03-02" in line
    assert events(db_path)[-1][1].startswith("eve\\x0a2026")


async def test_idle_sessions_end_and_a_refreshing_page_does_not_hold_them_open(
    client: Client, clock: Clock, db_path: Path,
) -> None:
    await sign_in(client, "view.vic")
    clock.advance(minutes=10)
    assert (await client.get("/?auto=1")).status == 200  # refresh: not activity
    clock.advance(minutes=6)
    resp = await client.get("/api/records")
    assert resp.status == 401 and "idle timeout" in (await resp.json())["error"]
    assert (await client.get("/api/records")).status == 401  # ended for good
    assert ("session_ended", "view.vic", "127.0.0.1", "idle timeout") in events(db_path)


async def test_activity_keeps_a_session_and_sign_out_ends_it(
    client: Client, clock: Clock, db_path: Path,
) -> None:
    csrf = await sign_in(client, "view.vic")
    for _ in range(3):
        clock.advance(minutes=10)
        assert (await client.get("/api/records")).status == 200
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))["otwatch_session"]
    resp = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    replay = await client.get("/api/records",
                              headers={"Cookie": f"otwatch_session={cookie.value}"})
    assert replay.status == 401
    assert ("sign_out", "view.vic", "127.0.0.1", "signed out") in events(db_path)


async def test_a_disabled_user_is_out_at_once(
    client: Client, tokens: dict[str, str], db_path: Path,
) -> None:
    await sign_in(client, "qa.lee")
    with open_store(str(db_path)) as store, store.database.write() as conn:
        set_disabled(conn, "qa.lee", True, by="admin.ada", now=T0)
    assert (await client.get("/api/records")).status == 401
    resp = await client.get("/api/records", headers=bearer(tokens["qa.lee"]))
    assert resp.status == 401 and "disabled" in (await resp.json())["error"]
    again = await sign_in_attempt(client, "qa.lee", "correct horse battery")
    assert again.status == 401


async def test_tokens_expire_and_are_revoked(
    client: Client, clock: Clock, tokens: dict[str, str], db_path: Path,
) -> None:
    auth = bearer(tokens["view.vic"])
    assert (await client.get("/api/records", headers=auth)).status == 200
    clock.advance(days=30)
    resp = await client.get("/api/records", headers=auth)
    assert resp.status == 401 and "expired token" in (await resp.json())["error"]
    clock.advance(days=-29)
    auth = bearer(tokens["qa.lee"])
    assert (await client.get("/api/records", headers=auth)).status == 200
    token_id = tokens["qa.lee"].split("_")[1]
    with open_store(str(db_path)) as store, store.database.write() as conn:
        revoke_token(conn, token_id, now=clock.now, by="qa.lee")
    resp = await client.get("/api/records", headers=auth)
    assert resp.status == 401 and "revoked token" in (await resp.json())["error"]
    forged = tokens["qa.lee"][:-4] + "AAAA"
    assert (await client.get("/api/records", headers=bearer(forged))).status == 401
    assert (await client.get("/api/records",
                             headers={"Authorization": "Basic cWE6cXE="})).status == 401
    refused = [e for e in events(db_path) if e[0] == "token_refused"]
    assert [e[3] for e in refused] == ["expired token", "revoked token", "unknown token"]


async def test_every_response_carries_the_security_headers(
    client: Client, tokens: dict[str, str],
) -> None:
    for path, headers in (("/login", {}), ("/api/records", bearer(tokens["view.vic"])),
                          ("/api/records", {}), ("/healthz", {}), ("/nothing", {})):
        resp = await client.get(path, headers=headers, allow_redirects=False)
        h = resp.headers
        assert "script-src" not in h["Content-Security-Policy"]
        assert "default-src 'none'" in h["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "no-referrer"
        assert h["Server"] == "otwatch", f"{path}: a version banner"
        assert "Strict-Transport-Security" not in h
    css = await client.get("/static/otwatch.css")
    assert css.status == 200 and css.content_type == "text/css"


async def test_the_pages_carry_no_script_and_no_inline_style(client: Client) -> None:
    await sign_in(client, "qa.lee")
    for path in ("/login", "/", f"/records/{NC1}"):
        text = await (await client.get(path)).text()
        assert "<script" not in text and "<style" not in text and " style=" not in text
