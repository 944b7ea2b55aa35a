"""The record page's step forms, posted as a browser posts them (urlencoded, with the
session's CSRF token) to the real app over a real SQLite store: success goes back to the
step (303), a refusal is shown beside its step with the user's input kept, a form without
the CSRF token or from a viewer is refused (403) and changes nothing."""

from __future__ import annotations

import hashlib
import html
import re
from typing import Any

import aiohttp
import pytest

from detectors.web._form_steps import FORM_STEPS, unflatten
from detectors.web.routes import ROUTES
from tests.web.conftest import Client, sign_in

NC1 = "NC-2026-000001"
STEPS = f"/records/{NC1}/steps"


async def _version(client: Client) -> int:
    return int((await (await client.get(f"/api/records/{NC1}")).json())["version"])


async def post_form(client: Client, csrf: str, step: str, fields: dict[str, str]) -> Any:
    data = {"csrf_token": csrf, "expected_version": str(await _version(client)), **fields}
    return await client.post(f"{STEPS}/{step}", data=data, allow_redirects=False)


def beside(page: str, step: str) -> str:
    """The refusal shown inside the form of ``step`` ('' if none)."""
    form = re.search(rf'<form class="step" id="step-{step}".*?</form>', page, re.S)
    assert form is not None, f"no form for step {step}"
    alert = re.search(r'role="alert">([^<]*)<', form.group(0))
    return "" if alert is None else html.unescape(alert.group(1))


def test_unflatten_builds_the_json_bodies_the_api_takes() -> None:
    assert unflatten({"decision.kind": "trade_off", "decision.options[]": "stop\n\n run ",
                      "five_whys.1.answer": "b", "five_whys.0.answer": "a",
                      "five_whys.0.domain": "human_factors", "note": "", "reason": "r",
                      "performed_at": "2026-03-02T08:00"}) == {
        "decision": {"kind": "trade_off", "options": ["stop", "run"]},
        "five_whys": [{"answer": "a", "domain": "human_factors"}, {"answer": "b"}],
        "reason": "r", "performed_at": "2026-03-02T08:00Z"}


def test_every_form_has_its_json_twins_permission_and_body() -> None:
    table = {(r.method, r.path): r for r in ROUTES}
    for step in FORM_STEPS:
        form = table[("POST", f"/records/{{id}}/steps/{step.name}")]
        twin = table[("POST", step.json_path)]
        wanted = "upload" if step.name == "attach" else "form"
        assert (form.access, form.body) == (twin.access, wanted), step.name
        assert twin.body == "json", step.name


async def test_a_form_step_runs_the_command_and_returns_to_the_step(client: Client) -> None:
    csrf = await sign_in(client, "qa.lee")
    resp = await post_form(client, csrf, "leads", {"lead": "qa.lee", "co_lead": "soc.kim",
                                                   "reason": "named by form"})
    assert resp.status == 303 and resp.headers["Location"] == f"/records/{NC1}#step-leads"
    record = await (await client.get(f"/api/records/{NC1}")).json()
    assert (record["lead"], record["co_lead"]) == ("qa.lee", "soc.kim")
    trail = await (await client.get(f"/api/records/{NC1}/trail")).json()
    assert any(t["actor"] == "qa.lee" and t["reason"] == "named by form" for t in trail)


async def test_a_guard_refusal_shows_beside_its_step_with_the_input_kept(
    client: Client,
) -> None:
    csrf = await sign_in(client, "qa.lee")
    resp = await post_form(client, csrf, "transition", {"to": "triage", "reason": "triage"})
    assert resp.status == 303
    before = await _version(client)
    resp = await post_form(client, csrf, "hold", {"lot_id": "LOT-<7>", "reason": "made then"})
    assert resp.status == 409
    page = await resp.text()
    assert "quality contribution" in beside(page, "hold")
    assert beside(page, "leads") == ""
    assert 'value="LOT-&lt;7&gt;"' in page and 'value="made then"' in page
    assert "<h1>409</h1>" not in page and f"<h1>{NC1}" in page
    assert await _version(client) == before


@pytest.mark.parametrize(("step", "fields", "status", "named"), [
    ("contribution", {"function": "security", "rating.severity": "huge",
                      "rating.likelihood": "likely", "reason": "r"}, 400, "risk matrix"),
    ("capa", {"action.id": "A1", "action.description": "x", "action.owner": "qa.lee",
              "action.domain": "quality", "action.status": "done",
              "action.original_due": "2026-04-01", "reason": "r"}, 400, "open"),
    ("effectiveness", {"effective": "maybe", "against_criteria": "c", "reason": "r"}, 400,
     "'effective'"),
    ("sign", {"as": "quality", "meaning": "ok", "password": "wrong"}, 403, "password"),
    ("transition", {"to": "closed", "reason": "r"}, 409, "not a lifecycle step"),
])
async def test_bad_input_is_refused_beside_the_step(
    client: Client, step: str, fields: dict[str, str], status: int, named: str,
) -> None:
    csrf = await sign_in(client, "both.bo")
    before = await (await client.get(f"/api/records/{NC1}")).json()
    resp = await post_form(client, csrf, step, fields)
    page = await resp.text()
    assert resp.status == status, page[-2000:]
    assert named in beside(page, step)
    assert await (await client.get(f"/api/records/{NC1}")).json() == before


async def test_a_stale_form_is_refused_beside_its_step(client: Client) -> None:
    csrf = await sign_in(client, "qa.lee")
    stale = str(await _version(client))
    await post_form(client, csrf, "comment", {"text": "first"})
    resp = await client.post(f"{STEPS}/comment", allow_redirects=False, data={
        "csrf_token": csrf, "expected_version": stale, "text": "second"})
    assert resp.status == 409
    assert "reload" in beside(await resp.text(), "comment")


async def test_a_file_attached_through_the_form_is_kept_with_its_hash(client: Client) -> None:
    csrf = await sign_in(client, "soc.kim")
    snapshot = b'{"ZoneTemp": 215.0}\n'
    form = aiohttp.FormData({"csrf_token": csrf, "expected_version": str(await _version(client)),
                             "item": "configuration_snapshot", "reason": "preserved"})
    form.add_field("file", snapshot, filename="press-01.json", content_type="application/json")
    resp = await client.post(f"{STEPS}/attach", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    (attached,) = (await (await client.get(f"/api/records/{NC1}")).json())["attachments"]
    assert attached["sha256"] == hashlib.sha256(snapshot).hexdigest()
    assert (attached["filename"], attached["item"]) == ("press-01.json",
                                                        "configuration_snapshot")
    page = await (await client.get(f"/records/{NC1}")).text()
    assert attached["sha256"] in page
    urlencoded = await client.post(f"{STEPS}/attach", allow_redirects=False, data={
        "csrf_token": csrf, "reason": "no file"})
    assert urlencoded.status == 415


async def test_a_form_without_the_csrf_token_is_refused(client: Client) -> None:
    await sign_in(client, "qa.lee")
    before = await _version(client)
    for step in FORM_STEPS:
        resp = await client.post(f"{STEPS}/{step.name}", allow_redirects=False,
                                 data={"reason": "no token", "text": "no token"})
        assert resp.status == 403, step.name
        assert "CSRF token" in await resp.text()
    assert await _version(client) == before


async def test_a_viewer_sees_no_form_and_is_refused_every_form(client: Client) -> None:
    csrf = await sign_in(client, "view.vic")
    page = await (await client.get(f"/records/{NC1}")).text()
    assert '<form class="step"' not in page and "ctq-setpoint" in page
    before = await _version(client)
    for step in FORM_STEPS:
        resp = await client.post(f"{STEPS}/{step.name}", allow_redirects=False,
                                 data={"csrf_token": csrf, "reason": "viewer"})
        assert resp.status == 403, step.name
    resp = await client.post("/report", data={"csrf_token": csrf, "reason": "viewer"},
                             allow_redirects=False)
    assert resp.status == 403
    assert await _version(client) == before


async def test_a_worker_sees_the_forms_of_their_roles_only(client: Client) -> None:
    await sign_in(client, "qa.tech")
    page = await (await client.get(f"/records/{NC1}")).text()
    shown = set(re.findall(r'<form class="step" id="step-([a-z-]+)"', page))
    assert {"hold", "contribution", "transition", "capa"} <= shown
    assert "sign" not in shown  # signing needs the approver role
    for label_for in re.findall(r'<label for="([^"]+)"', page):
        assert f'id="{label_for}"' in page, label_for


async def test_a_nonconformity_reported_by_hand(client: Client) -> None:
    csrf = await sign_in(client, "op.smith")
    form = await (await client.get("/report")).text()
    assert 'action="/report"' in form
    fields = {"csrf_token": csrf, "controller": "press-02", "tag": "Recipe", "site": "plant-1",
              "line": "line-b", "severity": "high", "description": "recipe <R-9> loaded",
              "occurred_at": "2026-03-02T07:30", "reason": "seen on the HMI"}
    refused = await client.post("/report", data={**fields, "severity": "dreadful"},
                                allow_redirects=False)
    assert refused.status == 400
    page = await refused.text()
    assert "severity" in page and 'value="press-02"' in page
    resp = await client.post("/report", data=fields, allow_redirects=False)
    assert resp.status == 303
    made = await (await client.get(resp.headers["Location"])).text()
    assert "recipe &lt;R-9&gt; loaded" in made and "press-02" in made
