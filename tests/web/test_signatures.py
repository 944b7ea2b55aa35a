"""Electronic signatures through the API (21 CFR 11.50, 11.70, 11.200): the password again at
each signing, printed name, user id, time and meaning, bound into the trail; two people for a
joint decision, each holding the role they sign as; a signature where none is needed refused."""

from __future__ import annotations

from pathlib import Path

import orjson

from detectors.records import State, open_store
from tests.records.lifecycle_steps import drive, prepare_plan
from tests.records.people import PASSWORD
from tests.web.conftest import T0, Client, bearer, sign_in

NC1 = "NC-2026-000001"
URL = f"/api/records/{NC1}"


def at_action_plan(db_path: Path) -> None:
    with open_store(str(db_path)) as store:
        drive(store, NC1, State.ACTION_PLAN)
        prepare_plan(store, NC1, T0)


def signature(role: str, password: str = PASSWORD) -> dict[str, str]:
    return {"as": role, "meaning": "action plan approved", "password": password}


async def test_two_people_sign_then_the_plan_is_approved(
    client: Client, db_path: Path,
) -> None:
    at_action_plan(db_path)
    csrf = await sign_in(client, "qa.lee")
    resp = await client.post(f"{URL}/signatures", json=signature("quality"),
                             headers={"X-CSRF-Token": csrf})
    assert resp.status == 200, await resp.text()
    refused = await client.post(f"{URL}/transition", json={"to": "implementation",
                                                           "reason": "approved"},
                                headers={"X-CSRF-Token": csrf})
    assert refused.status == 409 and "signature as security" in (await refused.json())["error"]
    await client.post("/logout", data={"csrf_token": csrf})
    csrf = await sign_in(client, "soc.kim")
    resp = await client.post(f"{URL}/transition", headers={"X-CSRF-Token": csrf}, json={
        "to": "implementation", "reason": "approved", "signature": signature("security")})
    assert resp.status == 200, await resp.text()
    record = await resp.json()
    assert record["state"] == "implementation"
    signed = [(s["printed_name"], s["user_id"], s["role"], s["meaning"], s["step"])
              for s in record["signatures"]]
    assert signed == [
        ("Quinn Lee", "qa.lee", "quality", "action plan approved", "action_plan->implementation"),
        ("Sam Kim", "soc.kim", "security", "action plan approved", "action_plan->implementation")]
    trail = await (await client.get(f"{URL}/trail")).json()
    entries = {t["seq"]: t for t in trail}
    for sig in record["signatures"]:
        entry = entries[sig["trail_seq"]]
        body = orjson.loads(entry["new"])
        assert (entry["field"], entry["actor"]) == ("signature", sig["user_id"])
        assert (body["record_id"], body["printed_name"], body["meaning"], body["signed_at"]) == (
            NC1, sig["printed_name"], sig["meaning"], entry["at"])
        assert body["reauthenticated_by"] == "password"


async def test_one_person_cannot_sign_as_both(client: Client, db_path: Path) -> None:
    at_action_plan(db_path)
    csrf = await sign_in(client, "both.bo")
    first = await client.post(f"{URL}/signatures", json=signature("quality"),
                              headers={"X-CSRF-Token": csrf})
    assert first.status == 200
    second = await client.post(f"{URL}/signatures", json=signature("security"),
                               headers={"X-CSRF-Token": csrf})
    assert second.status == 400
    assert "already signed action_plan->implementation as quality" in (
        await second.json())["error"]


async def test_signing_asks_the_password_again(client: Client, db_path: Path) -> None:
    at_action_plan(db_path)
    csrf = await sign_in(client, "qa.lee")
    resp = await client.post(f"{URL}/signatures", json=signature("quality", "not it"),
                             headers={"X-CSRF-Token": csrf})
    assert resp.status == 403 and "wrong password" in (await resp.json())["error"]
    missing = await client.post(f"{URL}/signatures", headers={"X-CSRF-Token": csrf},
                                json={"as": "quality", "meaning": "approved"})
    assert missing.status == 400 and "'password'" in (await missing.json())["error"]
    record = await (await client.get(URL)).json()
    assert record["signatures"] == [] or all(
        s["step"] != "action_plan->implementation" for s in record["signatures"])


async def test_the_signer_must_hold_the_role_and_be_an_approver(
    client: Client, db_path: Path, tokens: dict[str, str],
) -> None:
    at_action_plan(db_path)
    csrf = await sign_in(client, "soc.kim")
    resp = await client.post(f"{URL}/signatures", json=signature("quality"),
                             headers={"X-CSRF-Token": csrf})
    assert resp.status == 400
    assert "'soc.kim' does not hold the quality role" in (await resp.json())["error"]
    await client.post("/logout", data={"csrf_token": csrf})
    csrf = await sign_in(client, "qa.tech")
    resp = await client.post(f"{URL}/signatures", json=signature("quality"),
                             headers={"X-CSRF-Token": csrf})
    assert resp.status == 403 and "may not sign" in (await resp.json())["error"]
    token = await client.post(f"{URL}/signatures", json=signature("quality"),
                              headers=bearer(tokens["qa.lee"]))
    assert token.status == 403 and "not by an API token" in (await token.json())["error"]


async def test_a_signature_where_none_is_needed_is_refused_not_dropped(
    client: Client, db_path: Path,
) -> None:
    csrf = await sign_in(client, "qa.lee")
    resp = await client.post(f"{URL}/transition", headers={"X-CSRF-Token": csrf}, json={
        "to": "triage", "reason": "seen", "signature": signature("quality")})
    assert resp.status == 400
    assert "needs no signature; nothing was signed or changed" in (await resp.json())["error"]
    resp = await client.post(f"{URL}/signatures", json=signature("quality"),
                             headers={"X-CSRF-Token": csrf})
    assert resp.status == 400 and "where no signature is needed" in (await resp.json())["error"]
    record = await (await client.get(URL)).json()
    assert record["state"] == "detected" and record["signatures"] == []
