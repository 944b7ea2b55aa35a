"""The KPI page: `kpis.breakdown` on the hand-built history of tests/records/test_kpis.py
(answers worked out by hand), and ``GET /kpis`` served by the app on a real SQLite store."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from detectors.records import open_store
from detectors.records.kpis import AGE_BUCKETS, breakdown, compute
from detectors.records.report import ManualReport
from tests.records.people import QA, enrol
from tests.records.test_kpis import build_history
from tests.support.events import RECORDS_T0 as T0
from tests.web.conftest import Client, Clock, bearer, serve, sign_in

NOW = T0.replace(day=10)
SVG = re.compile(r"<svg .*?</svg>", re.S)


@pytest.fixture
def history_db(tmp_path: Path) -> Path:
    """A closed and recurred, B contained with three actions, C open (see `build_history`)."""
    path = tmp_path / "records.db"
    with open_store(str(path)) as store:
        store.migrate()
        enrol(store, T0)
        build_history(store)
    return path


def test_breakdown_by_month_and_the_open_records_by_state_and_age(history_db: Path) -> None:
    with open_store(str(history_db)) as store:
        entries = store.trail()
    found = breakdown(entries, NOW)
    assert found.time_to_detect == {"2026-03": [60.0, 120.0, 60.0]}
    assert found.time_to_contain == {"2026-03": [7200.0 - 30, 7200.0 - 90]}
    assert found.time_to_close == {"2026-03": [7 * 3600.0 - 30]}
    assert found.recurrence == {"2026-03": (1, 1)}
    assert found.actions == {"done by original due": 1, "done late": 1, "overdue": 1,
                             "not due yet": 1}
    assert found.open_by_state == {"detected": 1, "containment": 1}
    # B (created 03-02 08:01) and C (03-02 16:00) are 7-8 days old on 03-10
    assert found.open_by_age == {label: ({"containment": 1, "detected": 1}
                                         if label == "7-30 days" else {})
                                 for label, _ in AGE_BUCKETS}
    later = breakdown(entries, NOW + timedelta(days=60))
    assert later.open_by_age["30-90 days"] == {"containment": 1, "detected": 1}


def test_a_record_reported_by_hand_counts_from_the_time_the_reporter_gave(
    history_db: Path,
) -> None:
    with open_store(str(history_db)) as store:
        store.report(ManualReport(controller="press-09", tag="Speed", site="s", line="l",
                                  description="seen on the HMI",
                                  occurred_at=T0.replace(day=9)),
                     actor=QA, reason="seen on the HMI", now=T0.replace(day=9, hour=12))
        entries = store.trail()
    kpis, found = compute(entries, NOW), breakdown(entries, NOW)
    assert kpis.records == 4
    assert found.time_to_detect["2026-03"][-1] == 4 * 3600.0  # 08:00 to 12:00
    assert found.open_by_age["under 1 day"] == {"detected": 1}  # 20 hours


@pytest.fixture
async def kpi_client(history_db: Path) -> AsyncIterator[Client]:
    running = await serve(str(history_db), clock=Clock(NOW))
    yield running
    await running.close()


def charts_of(page: str) -> dict[str, ET.Element]:
    """Every chart on the page, parsed as XML, by its aria-label."""
    found = {}
    for text in SVG.findall(page):
        root = ET.fromstring(text)
        found[root.get("aria-label", "")] = root
    return found


def table_after(page: str, title: str) -> list[list[str]]:
    """The rows (cells as text) of the table captioned with the chart's title."""
    start = page.index(f"<caption>{title}: the figures</caption>")
    body = page[start:page.index("</table>", start)]
    return [re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", row)
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)][1:]


async def test_a_viewer_sees_every_chart_with_its_figures(kpi_client: Client) -> None:
    await sign_in(kpi_client, "view.vic")
    resp = await kpi_client.get("/kpis")
    assert resp.status == 200
    page = await resp.text()
    charts = charts_of(page)
    assert sorted(charts) == sorted([
        "Time to detect, by month of the record's creation", "Time to contain, by month "
        "contained", "Time to close, by month closed", "Records closed after corrective "
        "action, and whether the change recurred", "CAPA actions by their original due date",
        "Open records by state", "Open records by age"])
    assert all(root.get("role") == "img" for root in charts.values())
    assert table_after(page, "Open records by state") == [["detected", "1"],
                                                          ["containment", "1"]]
    assert table_after(page, "Time to close, by month closed") == [
        ["2026-03", "1", "7.0 h", "7.0 h", "7.0 h", "7.0 h", "7.0 h"]]
    assert table_after(page, "CAPA actions by their original due date") == [
        ["done by original due", "1"], ["done late", "1"], ["overdue", "1"],
        ["not due yet", "1"]]
    ages = table_after(page, "Open records by age")
    assert ["7-30 days", "1", "1", "2"] in ages and len(ages) == len(AGE_BUCKETS)
    assert "1 of 1 closed" in page and "1 of 3 due" in page
    assert "<script" not in page


async def test_an_empty_store_shows_no_data_figures(db_path: Path, clock: Clock) -> None:
    """Two records just opened: nothing contained, closed, recurred or planned yet."""
    client = await serve(str(db_path), clock=clock)
    try:
        await sign_in(client, "view.vic")
        page = await (await client.get("/kpis")).text()
    finally:
        await client.close()
    charts = charts_of(page)
    empty = {label for label in charts if label.endswith(": no data")}
    assert empty == {"Time to contain, by month contained: no data",
                     "Time to close, by month closed: no data",
                     "Records closed after corrective action, and whether the change recurred:"
                     " no data", "CAPA actions by their original due date: no data"}
    assert table_after(page, "Open records by state") == [["detected", "2"]]


async def test_without_credentials_the_page_sends_to_sign_in_and_a_token_reads_it(
    kpi_client: Client, history_db: Path,
) -> None:
    resp = await kpi_client.get("/kpis", allow_redirects=False)
    assert resp.status in (302, 303) and resp.headers["Location"].startswith("/login")
    from detectors.identity import create_token

    with open_store(str(history_db)) as store, store.database.write() as conn:
        _, token = create_token(conn, "view.vic", "tests", now=T0, days=30, by="test")
    resp = await kpi_client.get("/kpis", headers=bearer(token))
    assert resp.status == 200 and "Open records by age" in await resp.text()
