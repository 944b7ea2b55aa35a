"""A quality-only record has no security ticket (issue 19): the API gives ``null`` for it and
no ticket, the list and record pages say so and show no ``SEC-…`` id for it; a joint record
beside it keeps its ticket."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from detectors.classification import ClassKind
from detectors.records import open_store
from tests.records.people import enrol
from tests.support.events import RECORDS_T0 as T0
from tests.support.events import classified, record_event
from tests.web.conftest import Client, bearer, sign_in

QUALITY, JOINT = "NC-2026-000001", "NC-2026-000002"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A quality-only record, then a joint one (which gets SEC-2026-000001)."""
    path = tmp_path / "records.db"
    with open_store(str(path)) as store:
        store.migrate()
        enrol(store, T0)
        store.record_events([
            (record_event(1), classified(ClassKind.QUALITY_ONLY, key="q")),
            (record_event(2, controller="press-02", minutes=1), classified(key="j")),
        ], now=T0 + timedelta(minutes=5))
    return path


async def test_the_api_gives_a_quality_only_record_no_ticket(
    client: Client, tokens: dict[str, str],
) -> None:
    auth = bearer(tokens["view.vic"])
    rows = await (await client.get("/api/records", headers=auth)).json()
    assert {r["id"]: r["security_ticket"] for r in rows} == {
        QUALITY: None, JOINT: "SEC-2026-000001"}
    record = await (await client.get(f"/api/records/{QUALITY}", headers=auth)).json()
    assert (record["security_ticket"], record["ticket"]) == (None, None)
    assert record["classification"] == "quality_only"


async def test_the_pages_say_a_quality_only_record_has_no_ticket(client: Client) -> None:
    await sign_in(client, "view.vic")
    listing = await (await client.get("/")).text()
    assert listing.count("SEC-") == 1 and "SEC-2026-000001" in listing
    page = await (await client.get(f"/records/{QUALITY}")).text()
    assert "SEC-" not in page and ">None<" not in page
    assert "quality-only record" in page
    joint = await (await client.get(f"/records/{JOINT}")).text()
    assert "SEC-2026-000001" in joint
