"""A joint record walked from triage to closure in a real browser (Debian's chromium, driven
by Playwright) by two people, each in a browser of their own: Quinn Lee (quality, approver;
the lead) and Sam Kim (security, approver; the co-lead). Every step goes through the record
page's forms; each signs their part with the password typed in place; a guard's refusal
shows beside its step. A viewer finds the record by filter and is refused every form.

The service runs as its own process (`python -m detectors.web`), started and stopped by PID;
screenshots go to ``test-artefacts/`` (git-ignored) under stable names."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from detectors.classification import Classification, ClassKind, Severity
from detectors.records import open_store
from detectors.web._form_steps import FORM_STEPS
from tests.records.people import PASSWORD, enrol
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import record_event
from tests.web.conftest import CHEAP_SERVICE, running_service

ARTEFACTS = Path(__file__).parents[2] / "test-artefacts"
RID = "NC-2026-000002"
pytestmark = [pytest.mark.integration, pytest.mark.browser,
              pytest.mark.asyncio(loop_scope="session")]
Fields = dict[str, str | bool]


@pytest.fixture
def walk_db(tmp_path: Path) -> Path:
    """Three records; the joint one on press-01 / ZoneTemp (high) is walked."""
    path = tmp_path / "records.db"
    with open_store(str(path)) as store:
        store.migrate()
        enrol(store, T0)
        made = [("oven-02", "Speed", Severity.MEDIUM, ClassKind.QUALITY_ONLY, "speed"),
                ("press-01", "ZoneTemp", Severity.HIGH, ClassKind.JOINT,
                 "CTQ setpoint changed without approval"),
                ("press-01", "Pressure", Severity.LOW, ClassKind.SECURITY_ONLY, "pressure")]
        store.record_events([(record_event(n, controller=c, tag=t, minutes=n), Classification(
            kind=k, severity=s, rules_fired=("ctq-setpoint",), criteria_version="c-1",
            description=d, correlation_key=f"{c}/{t}",
            quality_impact="lots made after the change may be out of specification",
            security_impact="an unapproved write reached a validated controller"))
            for n, (c, t, s, k, d) in enumerate(made, start=1)], now=T0 + timedelta(minutes=5))
    return path


@pytest.fixture
def service(walk_db: Path, tmp_path: Path) -> Iterator[str]:
    with running_service(walk_db, tmp_path, CHEAP_SERVICE) as base:
        yield base


async def signed_in(browser: Browser, base: str, user_id: str,
                    width: int = 1280) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport={"width": width, "height": 900})
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.get_by_label("User name").fill(user_id)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator(".who")).to_contain_text(user_id)
    return context, page


async def fill(page: Page, step: str, fields: Fields) -> None:
    """Fill the step's form: text by name, a select by its option, True ticks a box."""
    form = page.locator(f"#step-{step}")
    for name, wanted in fields.items():
        control = form.locator(f'[name="{name}"]')
        if wanted is True:
            await control.check()
        elif await form.locator(f'select[name="{name}"]').count():
            await control.select_option(str(wanted))
        else:
            await control.fill(str(wanted))
    await form.locator("button[type=submit]").click()
    await page.wait_for_load_state()


async def done(page: Page, step: str, fields: Fields) -> None:
    """The step succeeds: back on the record at the step, no refusal beside it."""
    await fill(page, step, fields)
    await expect(page).to_have_url(f"{page.url.split('/records/')[0]}/records/{RID}"
                                   f"#step-{step}")
    await expect(page.locator(f"#step-{step} [role=alert]")).to_have_count(0)


async def move(page: Page, to: str, reason: str, sign_as: str = "") -> None:
    fields: Fields = {"to": to, "reason": reason}
    if sign_as:
        fields.update({"signature.as": sign_as, "signature.password": PASSWORD})
    await done(page, "transition", fields)
    await expect(page.locator("dl.summary")).to_contain_text(to.replace("_", " "))


async def test_a_joint_record_walked_to_closure_by_two_people(
    browser: Browser, service: str,
) -> None:
    ARTEFACTS.mkdir(exist_ok=True)
    lead_ctx, lead = await signed_in(browser, service, "qa.lee")
    soc_ctx, soc = await signed_in(browser, service, "soc.kim")
    try:
        # Found in the worklist by filter and search.
        await lead.get_by_label("Search (id, controller, tag, description)").fill("press-01")
        await lead.get_by_label("Severity").select_option("high")
        await lead.click("text=Filter")
        await expect(lead.locator("table.worklist tbody tr")).to_have_count(1)
        await lead.screenshot(path=str(ARTEFACTS / "worklist-filtered.png"), full_page=True)
        await lead.click(f"text={RID}")
        await expect(lead.locator("h1")).to_contain_text(RID)
        await soc.goto(f"{service}/records/{RID}")

        await done(lead, "leads", {"lead": "qa.lee", "co_lead": "soc.kim",
                                   "reason": "lead and co-lead named"})
        await move(lead, "triage", "joint: CTQ setpoint on a validated press")
        await lead.screenshot(path=str(ARTEFACTS / "record-triage.png"), full_page=True)

        # Containment waits for both contributions: refused beside the hold form.
        await fill(lead, "hold", {"lot_id": "LOT-7", "reason": "made under the change"})
        refusal = lead.locator("#step-hold [role=alert]")
        await expect(refusal).to_contain_text("quality contribution")
        await expect(refusal).to_contain_text("security contribution")
        await expect(lead.locator("#step-hold [name=reason]")).to_have_value(
            "made under the change")
        await lead.locator("#step-hold").screenshot(
            path=str(ARTEFACTS / "record-guard-refusal-beside-step.png"))

        await done(lead, "contribution", {
            "function": "quality", "assessment": "LOT-7 may be out of spec",
            "rating.severity": "major", "rating.likelihood": "possible", "signed_off": True,
            "reason": "quality view"})
        await soc.reload()
        await done(soc, "contribution", {
            "function": "security", "assessment": "shared EWS password used",
            "rating.severity": "critical", "rating.likelihood": "likely", "signed_off": True,
            "reason": "security view"})
        await lead.reload()
        await move(lead, "containment", "contain")
        await done(lead, "hold", {"lot_id": "LOT-7", "reason": "made under the change"})
        await soc.reload()
        await done(soc, "decision", {
            "decision.kind": "security_action", "decision.action": "isolate",
            "decision.status": "in_effect", "decision.owner": "soc.kim",
            "decision.coordination_note": "agreed with shift lead: press stays up",
            "reason": "cut the EWS off"})

        snapshot = b'{"ZoneTemp": 215.0, "Recipe": "R-12"}\n'
        await soc.locator("#step-attach [name=file]").set_input_files(files=[{
            "name": "press-01-snapshot.json", "mimeType": "application/json",
            "buffer": snapshot}])
        await done(soc, "attach", {"item": "configuration_snapshot",
                                   "reason": "configuration snapshot preserved"})
        await expect(soc.locator("#containment")).to_contain_text(
            hashlib.sha256(snapshot).hexdigest())
        await lead.reload()
        await move(lead, "investigation", "investigate")
        await done(lead, "root-cause", {
            "root_cause": "a shared engineering password let a contractor change it",
            "five_whys.0.answer": "the setpoint was changed from the EWS",
            "five_whys.0.domain": "process_equipment",
            "five_whys.1.answer": "the EWS has no individual accounts",
            "five_whys.1.domain": "technical_security_controls",
            "security_finding.found": "true",
            "security_finding.statement": "shared account on the EWS",
            "validated_by[]": "qa.lee\nsoc.kim", "reason": "RCA workshop"})
        await move(lead, "action_plan", "plan")
        await done(lead, "section", {"value": "no unapproved setpoint change for 30 days",
                                     "reason": "criteria agreed"})
        await done(lead, "capa", {
            "action.id": "A1", "action.description": "individual accounts on the EWS",
            "action.owner": "soc.kim", "action.domain": "security",
            "action.owning_system": "itsm", "action.external_ref": "CHG-4711",
            "action.original_due": "2099-03-20", "reason": "plan"})

        # Each approver signs their part with their password typed in place.
        await done(lead, "sign", {"as": "quality", "meaning": "action plan approved",
                                  "password": PASSWORD})
        await soc.reload()
        await move(soc, "implementation", "plan approved", sign_as="security")

        await lead.reload()
        await done(lead, "capa-update", {"action_id": "A1", "status": "done",
                                         "reason": "accounts created"})
        await done(lead, "effectiveness", {
            "action_id": "A1", "effective": "true",
            "against_criteria": "no shared accounts on the EWS", "reason": "account audit"})
        await move(lead, "effectiveness_check", "actions done")
        for audience in ("regulator", "certification_body", "customer"):
            await done(lead, "notification", {
                "audience": audience, "notify": "false",
                "rationale": "no product released, no reportable event", "reason": audience})
        await done(lead, "release", {"lot_id": "LOT-7", "reason": "lab: in spec"})
        await soc.reload()
        await done(soc, "decision-status", {"index": "0", "status": "lifted",
                                            "reason": "no longer needed"})
        await lead.reload()
        await done(lead, "effectiveness", {
            "effective": "true", "against_criteria": "no unapproved setpoint change",
            "reason": "30 days clean"})
        await soc.reload()
        await done(soc, "sign", {"as": "security", "meaning": "record closed",
                                 "password": PASSWORD})
        await lead.reload()
        await move(lead, "closed", "closed after 30 days clean", sign_as="quality")

        signatures = lead.locator("#signatures tbody tr")
        await expect(signatures).to_have_count(4)
        await expect(lead.locator("#signatures")).to_contain_text("Sam Kim (soc.kim)")
        await expect(lead.locator("#signatures")).to_contain_text("Quinn Lee (qa.lee)")
        await expect(lead.locator("#step-transition")).to_have_count(0)
        timeline = lead.locator("ol.timeline")
        await expect(timeline).to_contain_text("soc.kim")
        await expect(timeline.locator("li").first).to_contain_text("closed after 30 days")
        await lead.screenshot(path=str(ARTEFACTS / "record-closed.png"), full_page=True)
    finally:
        await lead_ctx.close()
        await soc_ctx.close()


async def test_a_viewer_finds_the_record_and_is_refused_every_form(
    browser: Browser, service: str,
) -> None:
    ARTEFACTS.mkdir(exist_ok=True)
    context, page = await signed_in(browser, service, "view.vic", width=820)
    try:
        await page.get_by_label("Classification").select_option("joint")
        await page.click("text=Filter")
        await expect(page).to_have_url(re.compile(r"/\?.*classification=joint"))
        await page.screenshot(path=str(ARTEFACTS / "worklist-tablet.png"), full_page=True)
        await page.click(f"text={RID}")
        await expect(page.locator("h1")).to_contain_text(RID)
        await expect(page.locator("form.step")).to_have_count(0)
        await page.screenshot(path=str(ARTEFACTS / "viewer-record-no-forms.png"),
                              full_page=True)
        csrf = await page.locator('header input[name="csrf_token"]').get_attribute("value")
        assert csrf
        for step in FORM_STEPS:  # the forms are not shown; posting one anyway is refused
            resp = await page.request.post(
                f"{service}/records/{RID}/steps/{step.name}",
                form={"csrf_token": csrf, "reason": "viewer tries", "expected_version": "1"},
                max_redirects=0)
            assert resp.status == 403, step.name
            assert "may not" in await resp.text()
        await page.reload()
        await expect(page.locator("ol.timeline li")).to_have_count(1)
    finally:
        await context.close()
