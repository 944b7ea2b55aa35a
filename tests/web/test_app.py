"""The records API and web UI over a real SQLite store, served on a free loopback port; every
call is made as a signed-in user (API token, or a browser session for the pages)."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.records import open_store
from tests.web.conftest import Client, Clock, bearer, serve, sign_in

NC1, NC2 = "NC-2026-000001", "NC-2026-000002"
TRIAGE = {"to": "triage", "reason": "triaged"}


async def test_list_is_newest_first_with_summary_fields(
    client: Client, tokens: dict[str, str],
) -> None:
    resp = await client.get("/api/records", headers=bearer(tokens["view.vic"]))
    assert resp.status == 200
    rows = await resp.json()
    assert [r["id"] for r in rows] == [NC2, NC1]
    first = rows[1]
    assert first["security_ticket"] == "SEC-2026-000001"
    assert (first["classification"], first["state"], first["severity"]) == (
        "joint", "detected", "high")
    assert (first["controller"], first["tag"]) == ("press-01", "ZoneTemp")
    assert first["detected_at"].startswith("2026-03-02T08:00")


async def test_detail_has_evidence_and_linked_ticket(
    client: Client, tokens: dict[str, str],
) -> None:
    resp = await client.get(f"/api/records/{NC1}", headers=bearer(tokens["view.vic"]))
    assert resp.status == 200
    record = await resp.json()
    assert record["ticket"]["id"] == "SEC-2026-000001"
    assert record["ticket"]["record_id"] == NC1
    (evidence,) = record["evidence"]
    assert len(evidence["sha256"]) == 64
    assert (evidence["controller"], evidence["tag"]) == ("press-01", "ZoneTemp")
    assert (evidence["classification"], evidence["rules_fired"]) == ("joint", ["ctq-setpoint"])
    assert (evidence["old_value"], evidence["new_value"]) == (200.0, 215.0)


async def test_unknown_record_is_404_json(client: Client, tokens: dict[str, str]) -> None:
    auth = bearer(tokens["view.vic"])
    for path in ("/api/records/NC-2026-999999", "/api/records/NC-2026-999999/trail"):
        resp = await client.get(path, headers=auth)
        assert resp.status == 404
        assert "NC-2026-999999" in (await resp.json())["error"]
    resp = await client.get("/api/nothing-here", headers=auth)
    assert resp.status == 404 and "error" in await resp.json()


async def test_html_list_and_record_page_escape_data(client: Client) -> None:
    await sign_in(client, "view.vic")
    listing = await (await client.get("/")).text()
    assert NC1 in listing and "SEC-2026-000001" in listing
    assert 'http-equiv="refresh" content="60;url=/?auto=1"' in listing
    assert "Audit trail intact" in listing and "Vic Viewer" in listing
    assert "<script" not in listing and "<style" not in listing
    resp = await client.get(f"/records/{NC1}")
    assert resp.status == 200
    page = await resp.text()
    assert "SEC-2026-000001" in page and "ctq-setpoint" in page and "c-1" in page
    assert "<th>Controller</th><th>Tag</th>" in page  # each evidence row names both
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "&lt;R-12&gt;" in page
    missing = await client.get("/records/NC-2026-999999")
    assert missing.status == 404 and "NC-2026-999999" in await missing.text()


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"to": "flying", "reason": "r"}', "'to'"),
        (b'{"to": "triage", "reason": ""}', "'reason'"),
        (b'{"to": "triage", "reason": "r", "x": 1}', "'x'"),
        (b'{"to": "triage", "reason": "  "}', "reason"),
        (b'{"to": "triage", "actor": "a", "reason": "r"}', "'actor'"),
        (b'{"to": "triage", "roles": ["security"], "reason": "r"}', "'roles'"),
    ],
)
async def test_malformed_transition_is_400_and_changes_nothing(
    client: Client, tokens: dict[str, str], body: bytes, named: str
) -> None:
    auth = bearer(tokens["qa.lee"])
    before = await (await client.get(f"/api/records/{NC1}", headers=auth)).json()
    resp = await client.post(f"/api/records/{NC1}/transition", data=body,
                             headers={"Content-Type": "application/json", **auth})
    assert resp.status == 400
    assert named in (await resp.json())["error"]
    assert await (await client.get(f"/api/records/{NC1}", headers=auth)).json() == before
    trail = await (await client.get(f"/api/records/{NC1}/trail", headers=auth)).json()
    assert [t["field"] for t in trail if t["field"] == "state"] == []


async def test_forbidden_transition_is_409_with_the_reason(
    client: Client, tokens: dict[str, str],
) -> None:
    auth = bearer(tokens["qa.lee"])
    resp = await client.post(f"/api/records/{NC1}/transition", json={**TRIAGE, "to": "closed"},
                             headers=auth)
    assert resp.status == 409
    error = await resp.json()
    assert error["current"] == "detected" and error["requested"] == "closed"
    assert "not a lifecycle step" in error["error"]
    resp = await client.post(f"/api/records/{NC1}/transition", json=TRIAGE,
                             headers=bearer(tokens["op.smith"]))
    assert resp.status == 403
    assert "may not move a record along its lifecycle" in (await resp.json())["error"]
    state = (await (await client.get(f"/api/records/{NC1}", headers=auth)).json())["state"]
    assert state == "detected"


async def test_a_stale_version_is_409_and_names_both_versions(
    client: Client, tokens: dict[str, str],
) -> None:
    auth = bearer(tokens["qa.lee"])
    read = await (await client.get(f"/api/records/{NC1}", headers=auth)).json()
    assert read["version"] == 1
    resp = await client.post(f"/api/records/{NC1}/transition",
                             json={**TRIAGE, "expected_version": read["version"]}, headers=auth)
    assert resp.status == 200 and (await resp.json())["version"] == 2
    stale = {**TRIAGE, "to": "containment", "expected_version": read["version"]}
    resp = await client.post(f"/api/records/{NC1}/transition", json=stale, headers=auth)
    assert resp.status == 409
    error = await resp.json()
    assert (error["expected_version"], error["current_version"]) == (1, 2)
    assert NC1 in error["error"] and "reload" in error["error"]
    state = (await (await client.get(f"/api/records/{NC1}", headers=auth)).json())["state"]
    assert state == "triage"


async def test_allowed_transition_is_recorded_in_the_trail_as_the_signed_in_user(
    client: Client, tokens: dict[str, str],
) -> None:
    auth = bearer(tokens["qa.lee"])
    resp = await client.post(f"/api/records/{NC1}/transition", json=TRIAGE, headers=auth)
    assert resp.status == 200 and (await resp.json())["state"] == "triage"
    trail = await (await client.get(f"/api/records/{NC1}/trail", headers=auth)).json()
    last = trail[-1]
    assert (last["field"], last["actor"], last["reason"]) == ("state", "qa.lee", "triaged")
    verify = await (await client.get("/api/verify", headers=auth)).json()
    assert verify["ok"] is True and verify["entries"] >= 3
    await sign_in(client, "qa.lee")
    page = await (await client.get(f"/records/{NC1}")).text()
    assert "qa.lee" in page and "triaged" in page


async def test_an_operator_comments(client: Client, tokens: dict[str, str]) -> None:
    resp = await client.post(f"/api/records/{NC1}/comments", json={"text": "LOT-7 ran hot"},
                             headers=bearer(tokens["op.smith"]))
    assert resp.status == 200
    trail = await (await client.get(f"/api/records/{NC1}/trail",
                                    headers=bearer(tokens["op.smith"]))).json()
    assert (trail[-1]["field"], trail[-1]["actor"]) == ("comment", "op.smith")
    resp = await client.post(f"/api/records/{NC1}/comments", json={"text": "hi"},
                             headers=bearer(tokens["view.vic"]))
    assert resp.status == 403


async def test_unknown_record_transition_is_404(client: Client, tokens: dict[str, str]) -> None:
    resp = await client.post("/api/records/NC-2026-999999/transition", json=TRIAGE,
                             headers=bearer(tokens["qa.lee"]))
    assert resp.status == 404


async def test_kpis_and_health(client: Client, tokens: dict[str, str]) -> None:
    kpis = await (await client.get("/api/kpis", headers=bearer(tokens["view.vic"]))).json()
    assert kpis["records"] == 2
    health = await (await client.get("/healthz")).json()
    assert health == {"ok": True, "store": "ready"}


async def test_missing_database_nobody_signs_in_and_it_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "later.db"
    client = await serve(str(path), clock=Clock())
    try:
        resp = await client.get("/api/records", headers=bearer("otw_0123456789ab_" + "x" * 43))
        assert resp.status == 401 and "not ready" in (await resp.json())["error"]
        assert "not ready" in await (await client.get("/login")).text()
        assert (await (await client.get("/healthz")).json())["store"] == "not ready"
        assert not path.exists()
        with open_store(str(path)) as store:  # the classifier creates it later
            store.migrate()
        assert (await (await client.get("/healthz")).json())["store"] == "ready"
    finally:
        await client.close()


async def test_empty_file_without_tables_is_not_ready(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    client = await serve(str(path), clock=Clock())
    try:
        assert (await (await client.get("/healthz")).json())["store"] == "not ready"
        assert "not ready" in await (await client.get("/login")).text()
    finally:
        await client.close()
