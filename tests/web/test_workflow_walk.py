"""The joint nonconformity workflow walked through the HTTP API by four people, from the
record the classifier opened to closure, with every guard met first as a refusal.

The service is the real app on a loopback port over a real SQLite file; each person signs in
through the form in a browser of their own (cookie jar) and acts with the CSRF token.
The four: op.smith (operator), qa.tech (quality), soc.kim (security, approver) and qa.lee
(quality, approver: the lead)."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from detectors.classification import Classification, ClassKind, Severity
from detectors.records import open_store
from tests.records.people import PASSWORD, enrol
from tests.support.events import record_event
from tests.web.conftest import T0, Client, Clock

RID = "NC-2026-000001"
URL = f"/api/records/{RID}"
PEOPLE = ("op.smith", "qa.tech", "soc.kim", "qa.lee")

#: Every refusal the walk met, in order: (what was tried, status, message).
REFUSALS: list[tuple[str, int, str]] = []


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """One joint record opened by the classifier, with the rules' impact texts."""
    path = tmp_path / "records.db"
    with open_store(str(path)) as store:
        store.migrate()
        enrol(store, T0)
        store.record_events([(record_event(1, recipe="<R-12>"), Classification(
            kind=ClassKind.JOINT, severity=Severity.HIGH, rules_fired=("ctq-setpoint",),
            criteria_version="c-1", description="CTQ setpoint changed without approval",
            correlation_key="press-01/ZoneTemp",
            quality_impact="lots made after the change may be out of specification",
            security_impact="an unapproved write reached a validated controller"))],
            now=T0 + timedelta(minutes=5))
    return path


class Person:
    """One signed-in browser: posts JSON with the session's CSRF token."""

    def __init__(self, session: aiohttp.ClientSession, user_id: str, csrf: str) -> None:
        self.session, self.user_id, self.csrf = session, user_id, csrf

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        async with self.session.post(path, json=body,
                                     headers={"X-CSRF-Token": self.csrf}) as resp:
            return resp.status, await resp.json()

    async def get(self, path: str) -> Any:
        async with self.session.get(path) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def ok(self, path: str, body: dict[str, Any]) -> Any:
        status, data = await self.post(path, body)
        assert status in (200, 201), f"{self.user_id} {path}: {status} {data}"
        return data

    async def refused(self, path: str, body: dict[str, Any], status: int,
                      *expected: str) -> str:
        got, data = await self.post(path, body)
        assert got == status, f"{self.user_id} {path}: {got} {data}"
        message = str(data["error"])
        for part in expected:
            assert part in message, message
        REFUSALS.append((f"{self.user_id} POST {path}", got, message))
        return message


async def _sign_in(client: Client, user_id: str) -> Person:
    session = aiohttp.ClientSession(str(client.make_url("")),
                                    cookie_jar=aiohttp.CookieJar(unsafe=True))
    return await _session(session, user_id)


async def _session(session: aiohttp.ClientSession, user_id: str) -> Person:
    page = await (await session.get("/login")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    await session.post("/login", data={"csrf_token": token.group(1), "username": user_id,
                                       "password": PASSWORD}, allow_redirects=False)
    me = await (await session.get("/api/me")).json()
    assert me["user_id"] == user_id
    return Person(session, user_id, str(me["csrf_token"]))


async def later(clock: Clock, people: dict[str, Person], **delta: float) -> None:
    """Time passes (sessions end when idle): everyone signs in again."""
    clock.advance(**delta)
    for person in people.values():
        person.csrf = (await _session(person.session, person.user_id)).csrf


@pytest.fixture
async def people(client: Client) -> AsyncIterator[dict[str, Person]]:
    signed_in = {user_id: await _sign_in(client, user_id) for user_id in PEOPLE}
    yield signed_in
    for person in signed_in.values():
        await person.session.close()


def _move(who: Person, to: str, reason: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    return f"{URL}/transition", {"to": to, "reason": reason, **extra}


def _signature(role: str, meaning: str) -> dict[str, str]:
    return {"as": role, "meaning": meaning, "password": PASSWORD}


async def test_a_joint_record_walked_to_closure_by_four_people(
    client: Client, people: dict[str, Person], clock: Clock, db_path: Path,
) -> None:
    op, tech, soc, lead = (people[p] for p in PEOPLE)
    record = await tech.get(URL)
    assert (record["quality_impact"], record["security_impact"]) == (
        "lots made after the change may be out of specification",
        "an unapproved write reached a validated controller")
    await lead.ok(f"{URL}/leads", {"lead": "qa.lee", "co_lead": "soc.kim",
                                   "reason": "lead and co-lead named"})
    await tech.ok(*_move(tech, "triage", "joint: CTQ setpoint on a validated press"))

    # Containment waits for the joint impact assessment.
    await tech.refused(f"{URL}/holds", {"lot_id": "LOT-7", "reason": "made under the change"},
                       409, "quality contribution", "security contribution")
    await op.ok(f"{URL}/impact/contributions", {
        "function": "operations", "assessment": "LOT-7 ran 20 min at 215 degC",
        "signed_off": True, "reason": "operations view"})
    await tech.ok(f"{URL}/impact/contributions", {
        "function": "quality", "assessment": "LOT-7 may be out of spec",
        "rating": {"severity": "major", "likelihood": "possible"}, "signed_off": True,
        "reason": "quality view"})
    await soc.refused(f"{URL}/impact/contributions", {
        "function": "security", "rating": {"severity": "huge", "likelihood": "likely"},
        "reason": "security view"}, 400, "'huge' is not on the risk matrix")
    record = await soc.ok(f"{URL}/impact/contributions", {
        "function": "security", "assessment": "shared EWS password used",
        "rating": {"severity": "critical", "likelihood": "likely"}, "signed_off": True,
        "reason": "security view"})
    ratings = {c["function"]: (c["author"], c["rating"] and c["rating"]["level"])
               for c in record["impact"]["contributions"]}
    assert ratings == {"operations": ("op.smith", None), "quality": ("qa.tech", "high"),
                       "security": ("soc.kim", "high")}
    look_back = await tech.get(f"{URL}/look-back")
    assert look_back["start"] == (T0 - timedelta(seconds=30)).isoformat()
    await tech.ok(f"{URL}/impact", {
        "product_impact": "LOT-7 on hold pending lab", "data_integrity": "batch record of LOT-7",
        "look_back_from": look_back["start"], "look_back_basis": look_back["basis"],
        "systems": [{"name": "press-01 PLC", "validated": True, "qualified": True}],
        "containment_risk": "holding LOT-7 delays one order", "reason": "impact summary"})

    await later(clock, people, hours=1)
    await tech.ok(*_move(tech, "containment", "contain"))
    await tech.ok(f"{URL}/holds", {"lot_id": "LOT-7", "reason": "made under the change"})
    await tech.ok(f"{URL}/decisions", {"reason": "no release of line A output", "decision": {
        "kind": "release_freeze", "status": "in_effect", "owner": "qa.tech",
        "note": "line A output frozen"}})
    await soc.ok(f"{URL}/decisions", {"reason": "cut the EWS off", "decision": {
        "kind": "security_action", "action": "isolate", "status": "in_effect",
        "owner": "soc.kim", "coordination_note": "agreed with shift lead: press stays up"}})
    await lead.ok(f"{URL}/decisions", {"reason": "keep running on the old recipe", "decision": {
        "kind": "trade_off", "status": "in_effect", "owner": "qa.lee",
        "options": ["stop line A", "run on recipe R-11 under watch"],
        "choice": "run on recipe R-11 under watch", "risk_accepted": "one more lot at risk",
        "approved_by": "qa.lee"}})
    snapshot = b'{"ZoneTemp": 215.0, "Recipe": "R-12"}\n'
    record = await soc.ok(f"{URL}/attachments", {
        "filename": "press-01-snapshot.json", "media_type": "application/json",
        "item": "configuration_snapshot", "content_base64": base64.b64encode(snapshot).decode(),
        "reason": "configuration snapshot preserved"})
    (attached,) = record["attachments"]
    assert attached["sha256"] == hashlib.sha256(snapshot).hexdigest()
    async with lead.session.get(f"{URL}/attachments/{attached['sha256']}",
                                params={"purpose": "review before the RCA"}) as resp:
        assert resp.status == 200 and await resp.read() == snapshot
    await soc.ok(f"{URL}/containment", {"evidence_checklist": {
        "logs": True, "configuration_snapshot": True, "batch_records": True},
        "reason": "evidence preserved"})

    await later(clock, people, hours=1)
    await tech.ok(*_move(tech, "investigation", "investigate"))
    await tech.ok(f"{URL}/root-cause", {
        "root_cause": "a shared engineering password let a contractor change the setpoint",
        "five_whys": [
            {"answer": "the setpoint was changed from the EWS", "domain": "process_equipment"},
            {"answer": "a contractor used the shared account", "domain": "human_factors"},
            {"answer": "the EWS has no individual accounts",
             "domain": "technical_security_controls"},
            {"answer": "access reviews skip OT systems", "domain": "management_systems"}],
        "fishbone": {"technical_security_controls": ["shared account"],
                     "management_systems": ["no OT access review"]},
        "reason": "RCA workshop"})
    await tech.ok(*_move(tech, "action_plan", "plan"))

    # Plan approval waits for the plan, the security finding and both signatures.
    await lead.refused(*_move(lead, "implementation", "approve"), 409,
                       "at least one CAPA action", "success criteria",
                       "security domain", "signature as quality", "signature as security")
    await soc.ok(f"{URL}/root-cause", {
        "security_finding": {"found": True, "statement": "shared account on the EWS"},
        "validated_by": ["qa.tech", "soc.kim"], "reason": "security domain validated"})
    await tech.ok(f"{URL}/sections", {"field": "log.success_criteria",
                                      "value": "no unapproved setpoint change for 30 days",
                                      "reason": "criteria agreed"})
    action = {"id": "A1", "description": "individual accounts on the EWS", "owner": "soc.kim",
              "domain": "security", "capa_type": "corrective", "owning_system": "itsm",
              "external_ref": "CHG-4711", "priority": "high",
              "addresses": "the EWS has no individual accounts", "revalidation_required": True,
              "change_control_ref": "CC-2026-031", "original_due": "2026-03-20",
              "current_due": "2026-03-20"}
    await tech.refused(f"{URL}/capa", {"action": {**action, "status": "done"},
                                       "reason": "plan"}, 400, "a new action is open")
    await tech.ok(f"{URL}/capa", {"action": action, "reason": "plan"})
    await tech.ok(f"{URL}/capa", {"action": {
        **action, "id": "A2", "description": "OT systems in the access review",
        "domain": "both", "capa_type": "preventive", "owning_system": "qms",
        "external_ref": "CAPA-88", "owner": "qa.tech", "revalidation_required": False,
        "change_control_ref": ""}, "reason": "plan"})
    await lead.ok(f"{URL}/signatures", _signature("quality", "action plan approved"))
    record = await soc.ok(*_move(soc, "implementation", "plan approved",
                                 signature=_signature("security", "action plan approved")))
    assert record["state"] == "implementation"

    await later(clock, people, days=2)
    await tech.refused(f"{URL}/capa/update", {"action_id": "A2", "reason": "later",
                                              "current_due": "2026-04-30"}, 400, "current_due")
    await tech.refused(f"{URL}/capa/due", {"action_id": "A2", "to_due": "2026-04-30",
                                           "approved_by": "qa.tech", "reason": "audit slot"},
                       400, "approver")
    await tech.ok(f"{URL}/capa/due", {"action_id": "A2", "to_due": "2026-04-30",
                                      "approved_by": "qa.lee", "reason": "next audit slot"})
    await soc.refused(f"{URL}/effectiveness", {
        "action_id": "A1", "effective": True, "against_criteria": "no shared accounts",
        "reason": "checked"}, 400, "is open")
    for action_id, who in (("A1", soc), ("A2", tech)):
        await who.ok(f"{URL}/capa/update", {"action_id": action_id, "status": "done",
                                            "reason": "done"})
    await soc.refused(f"{URL}/effectiveness", {
        "action_id": "A1", "effective": True, "against_criteria": "no shared accounts",
        "performed_at": "2019-01-01T00:00:00+00:00", "reason": "checked"},
        400, "before record")
    await soc.refused(f"{URL}/effectiveness", {
        "action_id": "A1", "effective": True, "against_criteria": "no shared accounts",
        "performed_at": "2030-01-01T00:00:00+00:00", "reason": "checked"}, 400, "future")
    await soc.ok(f"{URL}/effectiveness", {"action_id": "A1", "effective": True,
                                          "against_criteria": "no shared accounts on the EWS",
                                          "reason": "account audit"})
    await tech.ok(*_move(tech, "effectiveness_check", "actions done"))

    # Closure waits for notifications, containment, the checks and both signatures.
    await lead.refused(*_move(lead, "closed", "close"), 409,
                       "notification decision for the regulator",
                       "notification decision for the customer", "containment released or "
                       "justified", "an effectiveness check (field effectiveness_check)",
                       "effectiveness checked and effective (not: A2)", "signature as quality")
    await tech.ok(f"{URL}/effectiveness", {"action_id": "A2", "effective": True,
                                           "against_criteria": "OT in the access review",
                                           "reason": "review minutes"})
    await lead.refused(f"{URL}/notifications", {
        "audience": "customer", "notify": True, "rationale": "LOT-7 was shipped",
        "reason": "customer"}, 400, "notified_to")
    for audience in ("regulator", "certification_body"):
        await lead.ok(f"{URL}/notifications", {
            "audience": audience, "notify": False,
            "rationale": "no product released, no reportable event", "reason": audience})
    await lead.ok(f"{URL}/notifications", {
        "audience": "customer", "notify": True, "rationale": "a sample of LOT-7 was shipped",
        "notified_to": "ACME quality", "notified_at": clock.now.isoformat(),
        "reason": "customer told"})
    await tech.ok(f"{URL}/holds/release", {"lot_id": "LOT-7", "reason": "lab: in spec"})
    for index, who in ((0, tech), (1, soc), (2, lead)):
        await who.ok(f"{URL}/decisions/status", {"index": index, "status": "lifted",
                                                 "reason": "no longer needed"})
    await later(clock, people, days=30)
    await lead.ok(f"{URL}/effectiveness", {
        "effective": True, "against_criteria": "no unapproved setpoint change for 30 days",
        "follow_up_on": "2026-06-01", "reason": "30 days clean"})
    await soc.ok(f"{URL}/signatures", _signature("security", "record closed"))
    record = await lead.ok(*_move(lead, "closed", "closed after 30 days clean",
                                  signature=_signature("quality", "record closed")))

    assert record["state"] == "closed" and record["ticket"]["status"] == "closed"
    assert (record["lead"], record["co_lead"]) == ("qa.lee", "soc.kim")
    trail = await lead.get(f"{URL}/trail")
    actors = {entry["actor"] for entry in trail}
    assert set(PEOPLE) <= actors
    custody = [e for e in trail if e["field"] == "custody"]
    assert [(e["actor"], e["reason"]) for e in custody] == [("qa.lee", "review before the RCA")]
    # the whole store (rows, attached files, signatures) is what the trail says, every
    # action of the walk replayed
    verified = await lead.get("/api/verify")
    assert verified["ok"] is True and verified["problems"] == [], verified["problems"]
    assert verified["entries"] >= len(trail) and verified["checkpoints_checked"] is False
    with open_store(str(db_path)) as store:
        assert store.verify_signatures() == []
    for what, status, message in REFUSALS:
        print(f"REFUSED {status} {what}: {message}")
