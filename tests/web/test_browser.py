"""A real browser (Debian's chromium, driven by Playwright) signs in and is refused a page
its role does not allow. The service runs as its own process (`python -m detectors.web`),
started and stopped by PID here; screenshots go to ``test-artefacts/`` (git-ignored)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.records.people import PASSWORD
from tests.web.conftest import CHEAP_SERVICE, running_service

ROOT = Path(__file__).parents[2]
ARTEFACTS = ROOT / "test-artefacts"
pytestmark = [pytest.mark.integration, pytest.mark.browser,
              pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture
def service(db_path: Path, tmp_path: Path) -> Iterator[str]:
    """The records service on a free loopback port, as its own process."""
    with running_service(db_path, tmp_path, CHEAP_SERVICE) as base:
        yield base


async def sign_in(page: Page, user_id: str) -> None:
    await page.fill("#username", user_id)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")


async def test_a_viewer_signs_in_and_is_refused_the_users_page(page: Page, service: str) -> None:
    ARTEFACTS.mkdir(exist_ok=True)
    await page.goto(f"{service}/admin/users")
    await expect(page).to_have_url(f"{service}/login?next=/admin/users")
    await sign_in(page, "view.vic")
    await expect(page).to_have_url(f"{service}/admin/users")
    await expect(page.locator("h1")).to_have_text("403")
    await expect(page.locator("body")).to_contain_text(
        "'view.vic' (viewer) may not manage users, roles and API tokens")
    await page.screenshot(path=str(ARTEFACTS / "viewer-refused-users-page.png"),
                          full_page=True)
    await page.goto(f"{service}/")
    await expect(page.locator("body")).to_contain_text("NC-2026-000001")
    await expect(page.locator(".who")).to_contain_text("Vic Viewer")
    await page.screenshot(path=str(ARTEFACTS / "viewer-records-list.png"), full_page=True)
    await page.click("text=Sign out")
    await expect(page).to_have_url(f"{service}/login")


async def test_a_wrong_password_keeps_the_browser_out(page: Page, service: str) -> None:
    await page.goto(f"{service}/")
    await page.fill("#username", "qa.lee")
    await page.fill("#password", "not the password")
    await page.click("button[type=submit]")
    await expect(page.locator("[role=alert]")).to_contain_text(
        "unknown user name or wrong password")
    response = await page.goto(f"{service}/api/records")
    assert response is not None and response.status == 401
