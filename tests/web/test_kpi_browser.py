"""Debian's chromium (Playwright) opens the KPI page and a record's dossier as a viewer, under
the service's real Content-Security-Policy (no script, no inline style): the charts must draw
with nothing refused. Screenshots: test-artefacts/kpis.png and test-artefacts/dossier.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import ConsoleMessage, Page, Response, expect

from detectors.records import open_store
from detectors.web.dossier import SECTIONS
from tests.records.people import enrol
from tests.records.test_kpis import build_history
from tests.support.events import RECORDS_T0 as T0
from tests.web.conftest import CHEAP_SERVICE, running_service
from tests.web.test_browser import ARTEFACTS, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.browser,
              pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[str]:
    """The service (its own process) over the hand-built history of tests/records/test_kpis.py:
    NC-2026-000001 closed and recurred, NC-2026-000002 in containment with three actions."""
    db = tmp_path / "records.db"
    with open_store(str(db)) as store:
        store.migrate()
        enrol(store, T0)
        build_history(store)
    with running_service(db, tmp_path, CHEAP_SERVICE) as base:
        yield base


async def test_a_viewer_sees_the_kpi_charts_and_a_dossier(page: Page, service: str) -> None:
    refused: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    def on_response(response: Response) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            refused.append(f"{response.status} {response.url}")

    page.on("console", on_console)
    page.on("response", on_response)
    ARTEFACTS.mkdir(exist_ok=True)
    await page.goto(f"{service}/kpis")
    await sign_in(page, "view.vic")
    await expect(page).to_have_url(f"{service}/kpis")
    await expect(page.locator("svg[role=img]")).to_have_count(7)
    await expect(page.get_by_role("img", name="Open records by state")).to_be_visible()
    bars = page.locator("svg[aria-label='Open records by state'] rect title")
    await expect(bars).to_have_text(["detected: 1", "containment: 1"])
    await page.screenshot(path=str(ARTEFACTS / "kpis.png"), full_page=True)

    await page.goto(f"{service}/records/NC-2026-000001/dossier")
    await expect(page.locator("h1")).to_have_text("Dossier of nonconformity NC-2026-000001")
    await expect(page.locator("section > h2")).to_have_text([h for h, _ in SECTIONS])
    await expect(page.locator("#verification")).to_contain_text("intact")
    await page.screenshot(path=str(ARTEFACTS / "dossier.png"), full_page=True)
    assert refused == []
